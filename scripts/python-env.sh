# Sourced by start.sh and test.sh, from the project folder: `choose_python` sets PYTHON to a
# Python 3.10 or newer that may install packages: the active virtual environment's (or conda
# environment's), else the project's own .venv, made on first use and reused after.
#
# Why: stock Debian and Ubuntu have `python3` but no `python`, and their python3 refuses
# `pip install` outside a virtual environment (PEP 668). The .venv sees the packages the
# machine's Python already has (--system-site-packages), so a machine that has them installs
# nothing again and works offline; pip adds what is missing or too old, into .venv only.

NEEDED_MAJOR=3
NEEDED_MINOR=10

say() { printf '%s\n' "$*" >&2; }

# "3.11.7" for the interpreter "$1", or nothing when it does not run.
python_version() {
  "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true
}

# Succeeds when the version "$1" (like 3.11.7) is 3.10 or newer.
new_enough() {
  local major minor
  IFS=. read -r major minor _ <<<"$1"
  [ -n "$major" ] && [ -n "$minor" ] || return 1
  [ "$major" -gt "$NEEDED_MAJOR" ] || { [ "$major" -eq "$NEEDED_MAJOR" ] && [ "$minor" -ge "$NEEDED_MINOR" ]; }
}

# Exits with one sentence unless the interpreter "$1" is new enough.
require_new_enough() {
  local version
  version="$(python_version "$1")"
  if ! new_enough "$version"; then
    say "SkyReels V1 Studio needs Python $NEEDED_MAJOR.$NEEDED_MINOR or newer, but $1 is ${version:-not a working Python}: install a newer python3 (on Debian or Ubuntu: apt-get install python3 python3-venv) and run this again."
    exit 1
  fi
}

# The sentence to show when .venv cannot be made (Debian's python3 needs python3-venv for it).
venv_advice() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo "
  say "Could not make the virtual environment .venv: install Python's venv module (on Debian or Ubuntu: ${sudo}apt-get install python3-venv) and run this again."
}

# Sets PYTHON. Returns 1 (after showing why) when .venv had to be made and could not be.
choose_python() {
  if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    PYTHON="$VIRTUAL_ENV/bin/python"
  elif [ -n "${CONDA_PREFIX:-}" ] && [ -x "$CONDA_PREFIX/bin/python" ]; then
    PYTHON="$CONDA_PREFIX/bin/python"
  else
    PYTHON="$PWD/.venv/bin/python"
    # A .venv left without pip (made before python3-venv was installed) is made again.
    if ! [ -x "$PYTHON" ] || ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
      local base
      base="$(command -v python3 || command -v python || true)"
      if [ -z "$base" ]; then
        say "SkyReels V1 Studio needs Python $NEEDED_MAJOR.$NEEDED_MINOR or newer, and neither python3 nor python was found: install python3 (on Debian or Ubuntu: apt-get install python3 python3-venv) and run this again."
        exit 1
      fi
      require_new_enough "$base"
      say "Making a virtual environment in .venv with $base (Python $(python_version "$base")); later runs reuse it."
      rm -rf .venv
      if ! "$base" -m venv --system-site-packages .venv >&2; then
        rm -rf .venv
        venv_advice
        return 1
      fi
    fi
  fi
  require_new_enough "$PYTHON"
}

# Installs the requirements file "$1" into $PYTHON's environment, unless exactly these
# requirements (that file and the files it includes) were installed there before: a stamp of
# their hash in the environment says so. Why: pip takes ~9 s to find nothing to do, against
# ~4 s for the app to start. A first install takes minutes and pip says ~135 lines of it, some
# alarming and harmless ("Can't uninstall 'PyJWT'": a package of the system's, which stays);
# so pip speaks to a log file in the environment, and the terminal hears one line before and
# one after, or, when pip fails, where its log is and its last lines.
install_requirements() {
  local file="$1" prefix stamp wanted log
  prefix="$("$PYTHON" -c 'import sys; print(sys.prefix)')"
  stamp="$prefix/.skyreels-${file##*/}.sha256"  # bash alone: a fresh machine may lack coreutils' extras
  wanted="$(requirements_hash "$file")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
    return 0
  fi
  log="$prefix/skyreels-pip.log"
  say "Installing the packages in $file into $prefix: the first time takes a few minutes, later starts skip this (pip's log: $log)."
  if ! "$PYTHON" -m pip install --disable-pip-version-check --no-input --progress-bar off -r "$file" >"$log" 2>&1; then
    say "pip could not install the packages in $file. Its log is $log; its last lines:"
    last_lines "$log" 12 >&2
    say "Fix what they name (often the network, or a proxy), then run this again."
    exit 1
  fi
  printf '%s\n' "$wanted" >"$stamp" 2>/dev/null || true
  say "Installed $(installed_summary "$log"); the next start goes straight to the app."
}

# The last "$2" lines of the file "$1", indented (bash alone: no tail on a bare system).
last_lines() {
  local -a lines
  mapfile -t lines <"$1"
  local from=$(( ${#lines[@]} > $2 ? ${#lines[@]} - $2 : 0 ))
  printf '  %s\n' "${lines[@]:from}"
}

# "12 packages" from pip's "Successfully installed a-1 b-2 ..." line, or "nothing new".
installed_summary() {
  local line words
  while IFS= read -r line; do
    if [[ "$line" == "Successfully installed "* ]]; then
      read -r -a words <<<"${line#Successfully installed }"
      printf '%d package%s' "${#words[@]}" "$([ "${#words[@]}" = 1 ] || echo s)"
      return
    fi
  done <"$1"
  printf 'nothing new (everything was there already)'
}

# One hash of a requirements file and every file it pulls in with -r, and of the interpreter.
requirements_hash() {
  "$PYTHON" - "$1" <<'PY'
import hashlib, pathlib, re, sys
seen, digest = set(), hashlib.sha256(sys.version.encode())
def add(path):
    path = path.resolve()
    if path in seen or not path.exists():
        return
    seen.add(path)
    text = path.read_bytes()
    digest.update(str(path).encode() + b"\0" + text)
    for line in text.decode("utf-8", "replace").splitlines():
        found = re.match(r"\s*(?:-r|--requirement)\s*=?\s*(\S+)", line)
        if found:
            add(path.parent / found.group(1))
add(pathlib.Path(sys.argv[1]))
print(digest.hexdigest())
PY
}
