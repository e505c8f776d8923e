"""Registry: catalog changes committed as new versions with ``put_if_absent``; losers retry."""

from __future__ import annotations

import difflib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from apiary.catalog.models import BoxDef, FrameDef, HiveDef, RegistryState
from apiary.commitlog import Attempt, CommitLog, commit, encode
from apiary.errors import (
    AlreadyExistsError,
    ApiaryError,
    EntityNotFoundError,
    NotFoundError,
    SerializationError,
)
from apiary.names import validate_name
from apiary.storage import Storage

log = logging.getLogger("apiary.catalog")

# How far back reading looks for an intact state when the newest ones are damaged.
FALLBACK_VERSIONS = 10

# A change edits a copy of the state in place; it returns False when there is nothing to do.
Change = Callable[[RegistryState], bool]


class Registry:
    def __init__(self, storage: Storage, writer: str, *, commit_retries: int = 100) -> None:
        self.log = CommitLog(storage, "_registry")
        self.writer = writer
        self.commit_retries = commit_retries
        self._state = RegistryState()
        self._warned: set[int] = set()  # damaged versions already logged

    # -- reading -----------------------------------------------------------------------------

    def state(self) -> RegistryState:
        """The newest readable state. Each version is complete, so only the newest one is read.

        When the newest version is damaged, reading falls back to the newest intact one before
        it (with a warning naming the object), so frames stay readable; changes are refused
        until it is repaired (see :meth:`commit`).
        """
        newest = self._newest_version()
        if newest is not None:
            try:
                self._state = self._read(newest)
            except SerializationError as exc:
                self._state = self._fallback(newest, exc)
        return self._state

    def check_newest(self) -> RegistryState:
        """The newest state, or SerializationError naming it when it is damaged."""
        newest = self._newest_version()
        if newest is not None:
            self._state = self._read(newest)
        return self._state

    def _newest_version(self) -> int | None:
        """The newest version after the one held, or None.

        Once a state is held, versions have no gaps, so probing the next names until one is
        absent finds the newest without a listing (which grows with the history on a
        filesystem): one miss per call when nothing changed, the common case on every write.
        """
        held = self._state.version
        if held >= 0:
            newest = held
            while self.log.exists(newest + 1):
                newest += 1
            return newest if newest > held else None
        # First read: start listing at the checkpointed version, not at the beginning.
        checkpoint = self.log.latest_checkpoint()
        newer = self.log.versions_after(checkpoint - 1 if checkpoint else None)
        return CommitLog.version_of(newer[-1]) if newer else None

    def _read(self, version: int) -> RegistryState:
        path = self.log.path(version)
        try:
            state = RegistryState.model_validate(self.log.read(version))
        except ValidationError as exc:
            raise self._damaged(path, f"is damaged ({exc.error_count()} problems)") from exc
        except SerializationError as exc:
            raise self._damaged(path, "is not valid JSON") from exc
        if state.version != version:
            raise self._damaged(path, f"holds version {state.version}")
        return state

    def _fallback(self, newest: int, damage: SerializationError) -> RegistryState:
        """The newest intact state before ``newest``, for reading only."""
        for version in range(newest - 1, max(newest - 1 - FALLBACK_VERSIONS, -1), -1):
            try:
                state = self._read(version)
            except (SerializationError, NotFoundError):
                continue
            if newest not in self._warned:
                self._warned.add(newest)
                log.warning("%s Reading the catalog as of version %d meanwhile.", damage, version)
            return state
        raise damage

    @staticmethod
    def _damaged(path: str, problem: str) -> SerializationError:
        return SerializationError(
            f"catalog state {path} {problem}. Frames stay readable from the version before it, "
            "but catalog changes are refused: one made on an older state would silently undo "
            "the change this version holds. Restore the object from a backup or the bucket's "
            "object versioning; or, if it is the newest version, delete it: the catalog falls "
            "back to the version before, and the change it held is lost."
        )

    def hive(self, hive: str) -> HiveDef:
        hives = self.state().hives
        if hive not in hives:
            raise _not_found("hive", hive, hives)
        return hives[hive]

    def box(self, hive: str, box: str) -> BoxDef:
        boxes = self.hive(hive).boxes
        if box not in boxes:
            raise _not_found("box", f"{hive}.{box}", boxes, prefix=f"{hive}.")
        return boxes[box]

    def frame(self, hive: str, box: str, frame: str) -> FrameDef:
        frames = self.box(hive, box).frames
        if frame not in frames:
            raise _not_found("frame", f"{hive}.{box}.{frame}", frames, prefix=f"{hive}.{box}.")
        return frames[frame]

    # -- changing ----------------------------------------------------------------------------

    def commit(self, change: Change) -> RegistryState:
        """Apply ``change`` to the newest state and commit it as the next version.

        Goes through the one commit loop (:func:`apiary.commitlog.commit`) frames use too; the
        rebase of a catalog change is simply re-applying it to the newer state.
        """

        def prepare(base: RegistryState) -> Attempt[RegistryState] | None:
            new = base.model_copy(deep=True)
            if not change(new):
                return None
            new.version = base.version + 1
            new.commit_id = uuid.uuid4().hex
            new.writer = self.writer
            new.timestamp = datetime.now(UTC).isoformat()
            return Attempt(new.version, encode(new.to_json()), new)

        def refresh(_: RegistryState) -> RegistryState:
            return self.check_newest()  # never change a state read past a damaged version

        def checkpoint(state: RegistryState, version: int) -> None:
            self.log.write_checkpoint(
                version, encode(state.to_json()), encode({"version": version})
            )

        after, _ = commit(
            self.log,
            self.check_newest(),
            prepare=prepare,
            refresh=refresh,
            checkpoint=checkpoint,
            retries=self.commit_retries,
            what="the catalog",
        )
        self._state = after
        return after

    def create_hive(self, hive: str) -> None:
        validate_name(hive, "hive")

        def change(state: RegistryState) -> bool:
            if hive in state.hives:
                return False
            state.hives[hive] = HiveDef()
            return True

        self.commit(change)

    def create_box(self, hive: str, box: str) -> None:
        validate_name(box, "box")

        def change(state: RegistryState) -> bool:
            boxes = _lookup_hive(state, hive).boxes
            if box in boxes:
                return False
            boxes[box] = BoxDef()
            return True

        self.commit(change)

    def create_frame(self, hive: str, box: str, frame: str, definition: FrameDef) -> FrameDef:
        """Create a frame, or return the existing one when its definition is the same."""
        validate_name(frame, "frame")

        def change(state: RegistryState) -> bool:
            frames = _lookup_box(state, hive, box).frames
            existing = frames.get(frame)
            if existing is None:
                frames[frame] = definition
                return True
            if existing.same_definition(definition):
                return False
            raise AlreadyExistsError(
                f"frame {hive}.{box}.{frame} already exists with a different schema or "
                "partitioning; drop it first (drop_frame) or choose another name"
            )

        return self.commit(change).hives[hive].boxes[box].frames[frame]

    def drop_hive(self, hive: str, *, cascade: bool = False) -> None:
        def change(state: RegistryState) -> bool:
            boxes = _lookup_hive(state, hive).boxes
            if boxes and not cascade:
                raise ApiaryError(
                    f"hive {hive} still holds boxes {sorted(boxes)}; drop them first or pass "
                    "cascade=True to drop everything inside"
                )
            del state.hives[hive]
            return True

        self.commit(change)

    def drop_box(self, hive: str, box: str, *, cascade: bool = False) -> None:
        def change(state: RegistryState) -> bool:
            frames = _lookup_box(state, hive, box).frames
            if frames and not cascade:
                raise ApiaryError(
                    f"box {hive}.{box} still holds frames {sorted(frames)}; drop them first or "
                    "pass cascade=True to drop everything inside"
                )
            del state.hives[hive].boxes[box]
            return True

        self.commit(change)

    def drop_frame(self, hive: str, box: str, frame: str) -> None:
        def change(state: RegistryState) -> bool:
            frames = _lookup_box(state, hive, box).frames
            if frame not in frames:
                raise _not_found("frame", f"{hive}.{box}.{frame}", frames, prefix=f"{hive}.{box}.")
            del frames[frame]
            return True

        self.commit(change)


def _lookup_hive(state: RegistryState, hive: str) -> HiveDef:
    if hive not in state.hives:
        raise _not_found("hive", hive, state.hives)
    return state.hives[hive]


def _lookup_box(state: RegistryState, hive: str, box: str) -> BoxDef:
    boxes = _lookup_hive(state, hive).boxes
    if box not in boxes:
        raise _not_found("box", f"{hive}.{box}", boxes, prefix=f"{hive}.")
    return boxes[box]


def _not_found(kind: str, full: str, existing: dict, prefix: str = "") -> EntityNotFoundError:
    """'frame a.b.tempx does not exist; did you mean a.b.temp?' — or list what does exist."""
    name = full.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, list(existing), n=3, cutoff=0.6)
    if close:
        hint = "did you mean " + " or ".join(prefix + c for c in close) + "?"
    elif existing:
        hint = f"existing {kind}s: " + ", ".join(prefix + e for e in sorted(existing)[:10])
    else:
        hint = f"there are no {kind}s here yet; create it first"
    return EntityNotFoundError(f"{kind} {full} does not exist; {hint}")
