# Sphinx configuration of the course book (issue 18). `make book` (scripts/build_book.py)
# writes the pages into _build/book/src and runs Sphinx with this folder as its conf dir.
# Everything the pages load is local: the theme's assets ship in the wheel, MathJax comes
# from the django-static-mathjax package (copied under _static/mathjax), no widget manager.
import os

project = "PyTorch Under the Hood"
author = "PyTorch Under the Hood contributors"
copyright = "PyTorch Under the Hood contributors, MIT licence"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
master_doc = "index"

# The notebooks come executed (cached by content); Sphinx never runs a kernel.
nb_execution_mode = "off"
nb_ipywidgets_js = {}             # the ipywidgets HTML manager is a CDN script: none here
nb_output_stderr = "show"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

# MathJax 3 from a local copy: the build copies the django-static-mathjax package's es5
# files under _static/mathjax (the path is relative to _static).
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "PyTorch Under the Hood"
html_static_path = [p for p in os.environ.get("BOOK_STATIC", "").split(os.pathsep) if p]
html_css_files = ["course-book.css"]
html_favicon = os.environ.get("BOOK_FAVICON") or None   # a local icon: no 404 for /favicon.ico
html_extra_path = [p for p in os.environ.get("BOOK_EXTRA", "").split(os.pathsep) if p]
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False
html_theme_options = {
    "use_download_button": False,      # each lesson links its clean .ipynb itself
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
}
html_context = {"default_mode": "light"}
