# Apiary developer recipes. Install just with `pip install rust-just` (or your package manager).

# Run the tests and the linters.
default: test lint

# Run the test suite; extra arguments go to pytest (e.g. `just test -k ledger -x`).
test *options:
    python3 -m pytest {{options}}

# ruff lint and format check.
lint:
    ruff check .
    ruff format --check .

# Reformat and autofix.
fix:
    ruff check --fix .
    ruff format .

# Write, read back and summarise sample data on the embedded default (~/.apiary/data/default).
demo *options:
    apiary demo {{options}}

# Start moto's S3 server on 127.0.0.1 for manual use (creates bucket `apiary-dev`), until Ctrl-C.
s3 port="9000":
    python3 -m apiary.testing.moto_server --port {{port}} --bucket apiary-dev

# Benchmarks (see README "Benchmarks"): `just bench write`, `just bench tpch --sf 1`.
bench *options:
    apiary bench {{options}}

# Prove the package installs and runs with runtime dependencies only (no test extras).
no-dev:
    rm -rf /tmp/apiary-nodev && python3 -m venv /tmp/apiary-nodev
    /tmp/apiary-nodev/bin/pip install -q .
    /tmp/apiary-nodev/bin/apiary demo --storage /tmp/apiary-nodev/data --rows 10000

# Build the frozen `apiary` program for this machine's architecture in a clean venv:
# dist/apiary/ (the unpacked tree) and dist/apiary-<version>-linux-<arch>.tar.gz (+ .sha256).
binary *options:
    python3 -m image.binary {{options}}

# Write a flashable Raspberry Pi OS image with Apiary preinstalled (see image/README.md).
image base binary out="apiary.img":
    apiary-image build --base {{base}} --binary {{binary}} --out {{out}}
