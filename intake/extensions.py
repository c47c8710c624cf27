"""Extension objects, created unbound and initialised in ``create_app``."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

from intake.security.crypto import register_encryption_events

# Stable constraint names, so migrations can refer to (and drop) them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# Flask-SQLAlchemy builds db.Model as its own subclass of DeclarativeBase (copying Base's
# metadata), so the encryption hooks attach to db.Model, the class every model derives from.
register_encryption_events(db.Model)

# Every model derives from ``Model``, which is ``db.Model``. A type checker cannot see through an
# attribute used as a base class, so it is told what ``db.Model`` is: a subclass of ``Base``.
if TYPE_CHECKING:
    class Model(Base):
        __abstract__ = True
        __table__: ClassVar[Table]  # each model maps one table (never a join or a select)
else:
    Model = db.Model
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
bootstrap = Bootstrap5()
