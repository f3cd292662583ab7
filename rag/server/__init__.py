"""The HTTP service: a thin FastAPI adapter over the same library calls as the CLI.

``app.create_app(settings)`` builds the application; ``cli.run(args)`` is ``rag serve``. This package's
``__init__`` stays empty so that building the CLI parser (which imports ``options``) stays cheap.
"""
