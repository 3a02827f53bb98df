"""``carepath serve``: the runtime behind HTTP/JSON (SPEC §9), on FastAPI and uvicorn.

Needs the ``serve`` extra (``pip install 'carepath[serve]'``); nothing here is imported by
``import carepath``. The modules: ``models`` (the request and answer shapes, which also make
``/openapi.json``), ``body`` (the bounded ``POST /events`` body), ``service`` (the one thread that
owns the runtime, the wake-ups), ``push`` (``--deliver-url``), ``metrics`` (``/metrics``), ``app``
(the endpoints) and ``server`` (uvicorn, signals). See ``docs/integration.md``.
"""
