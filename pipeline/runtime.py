"""The per-run context the pipeline's stages share: :class:`Runtime`.

``with Runtime.open(config) as rt:`` gives each stage (:mod:`pipeline.jobs`,
:mod:`pipeline.ingest.cycle`, :mod:`pipeline.classify.cycle`) the config, the database engine and
session factory, and the model and knowledge files, loaded lazily on first use. Closing it stops the
model's embedding workers and disposes of the engine, however the block ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from types import TracebackType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pipeline import logs
from pipeline.classify.model import TextModel
from pipeline.classify.registry import load_active
from pipeline.config import Config
from pipeline.knowledge.regimes import RegimeBook, load_regimes
from pipeline.store.db import (
    make_engine,
    make_sessionmaker,
    require_current_schema,
    upgrade_database,
)

__all__ = ["Runtime"]

# Records keep the logger name they had before the runtime moved out of pipeline.jobs (tests read it).
log = logging.getLogger("pipeline.jobs")


@dataclass
class Runtime:
    """What the stages share in one process: config, database, and lazily loaded model/knowledge.

    A context manager: ``with Runtime.open(config) as rt:`` closes it (model workers stopped, engine
    disposed) however the block ends. :meth:`open` migrates the schema by default (the CLI, tests);
    with ``migrate=False`` (the DAG's tasks, after its ``migrate_database`` task) it only checks,
    quietly, that the schema is current, and raises :class:`~pipeline.errors.StoreError` if not.
    """

    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    _model: TextModel | None = field(default=None, repr=False)
    closed: bool = field(default=False, repr=False)

    @classmethod
    def open(cls, config: Config, *, migrate: bool = True) -> Runtime:
        logs.install(logs.secrets_of(config))  # context fields and masked secrets in log records
        engine = make_engine(config.database_url)
        try:
            if migrate:
                upgrade_database(engine)
            else:
                require_current_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(config, engine, make_sessionmaker(engine))

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def model(self) -> TextModel:
        if self._model is None:
            self._model = load_active(
                self.config.model_dir,
                threshold=self.config.threshold,
                embed_workers=self.config.embed_workers,
            )
        return self._model

    @cached_property
    def regimes(self) -> RegimeBook:
        return load_regimes(self.config.config_dir / "regimes.yaml")

    @cached_property
    def designation_index(self) -> Any:
        """The UN Consolidated List index (a DesignationIndex), or None when no list is configured."""
        path = self.config.designations_path
        if path is None:
            return None
        from pipeline.knowledge.designations import load_consolidated_list

        return load_consolidated_list(path)

    @cached_property
    def designations(self) -> Callable[[str], list[str]] | None:
        """A callable text -> matched designated names, or None when no list is configured."""
        index = self.designation_index
        if index is None:
            return None

        def match(text: str) -> list[str]:
            seen: dict[str, str] = {}
            for m in index.match(text):
                seen.setdefault(m.ref, f"{m.name} ({m.ref}, {m.kind})")
            return list(seen.values())

        return match

    @cached_property
    def describer(self) -> Any:
        """A :class:`~pipeline.alerts.describe.Describer`: story -> what its alert alleges (kinds, actors with direction, places, date); see
        :mod:`pipeline.alerts.describe`. Without a servable breach-kind tagger the kinds are not
        tagged (logged once); without places.yaml or actors.yaml fewer names are found."""
        from pipeline.alerts.describe import Describer
        from pipeline.classify.kinds import KINDS_DIR, load_active_tagger
        from pipeline.errors import ModelError
        from pipeline.knowledge.actors import load_actors
        from pipeline.knowledge.places import load_places

        cdir = self.config.config_dir
        try:
            tagger = load_active_tagger(self.config.model_dir / KINDS_DIR)
        except ModelError as err:
            log.error("alerts will not say what kind of breach: %s", err)
            tagger = None
        places = load_places(cdir / "places.yaml", missing_ok=True)
        actors = load_actors(
            cdir / "actors.yaml", cdir / "regimes.yaml", cdir / "places.yaml", missing_ok=True
        )
        describer = Describer(
            tagger=tagger, actors=actors, places=places, designations=self.designation_index
        )
        return describer

    def close(self) -> None:
        """Stop the model's embedding workers and dispose of the engine (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            stop = getattr(self._model and self._model.embedder, "close", None)
            if stop is not None:  # the embedder's worker processes
                stop()
        finally:
            self.engine.dispose()
