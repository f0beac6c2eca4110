"""SkyReels V1 Studio: `python app.py`, locally and on a Hugging Face Space."""

from skyreels_demo.web.page import main

if __name__ == "__main__":
    main()
