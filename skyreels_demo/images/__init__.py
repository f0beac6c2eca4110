"""Pictures: bound, open, orient, frame and encode one (picture, framing, encode); metadata and
size read from headers before anything is decoded (metadata, limits); fetch by address by our
rules (the remote package: networks, hops, refusals).

`from skyreels_demo import images` gives a picture's public face, as the flat module did:
everything public in picture.py (prepare, PreparedImage, is_remote_url, FITS, and the limits
it checks: MAX_BYTES, MAX_MEGAPIXELS, MIN_SIDE, ...), and, imported here by name, what callers
read of the frame and of the JPEG, which live in framing.py and encode.py.
"""

from skyreels_demo.images.encode import CONTENT_TYPE, JPEG_QUALITY, UPLOAD_BUDGET  # noqa: F401
from skyreels_demo.images.framing import choose_frame, frame_name  # noqa: F401
from skyreels_demo.images.picture import *  # noqa: F401,F403
