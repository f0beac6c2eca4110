"""Pictures: bound, open, orient, frame and encode one (picture); metadata and size read from
headers before anything is decoded (metadata, limits); fetch by address by our rules (remote).

`from skyreels_demo import images` gives the picture module's public face, as the flat module did.
"""

from skyreels_demo.images.picture import *  # noqa: F401,F403
