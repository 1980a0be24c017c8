#!/usr/bin/env bash
# Fetch kafka-python's own integration suite (tests/kafka_python_suite/pin.txt: its source
# release on PyPI) into .ci-thirdparty/kafka-python, where
# tests/integration/test_kafka_python_suite.py runs it against a strom broker. `.ci/run`
# calls this; run it by hand before that test outside CI. PYTHON: the interpreter whose pip
# downloads (python3 by default).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
here=tests/kafka_python_suite
dest=.ci-thirdparty/kafka-python
dist=.ci-thirdparty/dist
rm -rf "$dist" "$dest"
mkdir -p "$dist" "$dest"
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
  --dest "$dist" "$(cat "$here/pin.txt")"
tar -xzf "$dist"/kafka_python-*.tar.gz -C "$dest" --strip-components=1
# The release leaves out test/__init__.py (without it `test` is the standard library's
# package) and test/service.py (imported by its fixtures).
touch "$dest/test/__init__.py"
cp "$here/service.py" "$dest/test/service.py"
