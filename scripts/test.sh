#!/usr/bin/env bash
# Install the project with its test extra into .venv, run the offline eval suite, then the tests.
# This is the README's test command; .ci/run calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# The web page test drives headless Chromium (Debian package). Install it where we can (CI runs as root);
# elsewhere that one test is skipped and says why.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for the web page test ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "could not install chromium: the web page test will be skipped"
fi

# The Python docs retrieval suite (evals/retrieval_pydocs.yaml) indexes the Python 3.11 documentation sources
# (Debian package python3.11-doc). Installed the same way; without it that suite is reported as skipped.
if [ ! -d /usr/share/doc/python3.11/html/_sources ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing python3.11-doc for the Python docs retrieval suite ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-doc >/dev/null) \
    || echo "could not install python3.11-doc: the Python docs retrieval suite will be skipped"
fi

# The PostgreSQL store tests start a throwaway server of their own (initdb/pg_ctl, Unix socket only). Install the
# server where we can (CI runs as root); CI=true makes a missing server a failure rather than a skip.
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null 2>&1 \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing postgresql for the PostgreSQL store tests ..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
    || echo "could not install postgresql: the PostgreSQL tests will be skipped (or fail under CI=true)"
fi

set +e
# The offline eval suite, with its thresholds: a regression fails the run.
mkdir -p out
.venv/bin/rag eval --backend offline --junit out/eval-junit.xml --markdown out/eval-report.md
evals=$?

# The tests last, so their summary line closes the output. Two workers (pytest-xdist), one test file per worker
# at a time (module fixtures such as the full eval run are built once); most tests wait on subprocesses and
# servers, so two workers halve the wall time even on two cores. RAG_TEST_WORKERS=0 runs them in this process.
.venv/bin/python -m pytest -n "${RAG_TEST_WORKERS:-2}" --dist loadfile "$@"
tests=$?
set -e
# pytest exits 5 when it collected no tests: that is not a failure of the code.
if [ "$tests" -eq 5 ]; then echo "no tests collected"; tests=0; fi
if [ "$tests" -ne 0 ] || [ "$evals" -ne 0 ]; then
  echo "FAILED: tests exit $tests, eval exit $evals"
  exit 1
fi
