"""Check that the hashed locks agree with the pins people edit (make lint, pre-commit, CI).

Every ``name==version`` of requirements.txt must be in requirements.lock with that version, every
one of requirements-test.txt (and the runtime pins it includes) in requirements-test.lock, and every
locked package must carry hashes. Offline: it compares files. A mismatch means a pin was changed
without ``make lock``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#\\]+)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
            continue
        match = PIN.match(line)
        if match:
            found[canonical(match.group(1))] = match.group(2)
    return found


def locked(path: Path) -> tuple[dict[str, str], list[str]]:
    """The lock's pins, and the packages in it without a hash."""
    text = path.read_text(encoding="utf-8")
    found, unhashed = {}, []
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = PIN.match(block.strip())
        if match:
            found[canonical(match.group(1))] = match.group(2)
            if "--hash=sha256:" not in block:
                unhashed.append(match.group(1))
    return found, unhashed


def problems(source: Path, lock: Path) -> list[str]:
    if not lock.exists():
        return [f"{lock.name} is missing: run make lock"]
    wanted = pins(source)
    have, unhashed = locked(lock)
    out = [f"{name}=={version} is in {source.name} but {lock.name} has "
           f"{have.get(name, 'nothing')}: run make lock" for name, version in sorted(wanted.items())
           if have.get(name) != version]
    out += [f"{name} has no hash in {lock.name}: run make lock" for name in unhashed]
    return out


def main() -> int:
    found = problems(ROOT / "requirements.txt", ROOT / "requirements.lock")
    found += problems(ROOT / "requirements-test.txt", ROOT / "requirements-test.lock")
    for problem in found:
        print(problem, file=sys.stderr)
    if not found:
        print("The locks match the pins.")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
