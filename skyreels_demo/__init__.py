"""SkyReels V1 Studio: prompt, still image and seed in, a SkyReels V1 video out."""

__version__ = "0.2.0"
