"""The web app of ``crowdledger serve``: review pages, login, and the HTTP API.

``app.py`` builds the ASGI app (``create_app``); ``auth.py`` holds tokens, sessions,
roles and CSRF; ``security.py`` the headers and the Host/Origin checks; ``pages.py``
and ``login.py`` the HTML routes; ``queries.py`` and ``charts.py`` what the pages read
and draw. FastAPI, Jinja2 and uvicorn are imported only when the app is built.
"""
