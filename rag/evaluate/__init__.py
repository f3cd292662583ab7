"""The eval harness: hand-written suites in ``evals/`` run over the same calls as the CLI.

``suite`` defines suites, cases and assertion types; ``loading`` reads YAML and maps errors to
``file:line``; ``assertions`` holds the checks as pure functions; ``runner`` builds one temporary
index per corpus and runs the cases; ``metrics`` aggregates them and compares with a baseline;
``report`` and ``formats`` render text, JSON, Markdown, HTML and JUnit; ``cli`` ties it together.
Nothing is imported here, so building the argument parser (``options``) stays cheap.
"""
