"""The application factory: configuration, database, extensions, blueprints, error handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from portal.config import PROJECT_ROOT, instance_dir, load_config
from portal.db import Database, close_session


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Create the portal; refuses to start on a database whose migrations are behind."""
    settings = load_config(config)
    app = Flask(
        "portal",
        root_path=str(PROJECT_ROOT / "portal"),
        instance_path=str(instance_dir()),
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "portal" / "static"),
    )
    app.config.update(settings)
    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        proxies = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies
        )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    database = Database(app.config["DATABASE_URL"])
    app.extensions["portal_db"] = database
    if app.config["CHECK_MIGRATIONS"]:
        from portal.migrate import ensure_current

        try:
            ensure_current(database.engine)
        except Exception:
            database.dispose()
            raise
    app.teardown_appcontext(close_session)
    _register_extensions(app)
    _register_blueprints(app)
    from auth.throttle import init_throttling
    from portal.realtime import init_realtime

    init_throttling(app)
    init_realtime(app)
    return app


def _register_extensions(app: Flask) -> None:
    from portal import web

    web.init_app(app)


def _register_blueprints(app: Flask) -> None:
    from auth.oauth import bp as oauth_bp
    from auth.sso_views import bp as sso_bp
    from auth.views import bp as auth_bp
    from partners.integrations_views import bp as integrations_bp
    from partners.sso_admin_views import bp as sso_admin_bp
    from partners.views import bp as partners_bp
    from portal.api import api_bp, load_api_modules
    from portal.views import bp as portal_bp
    from shared_records.cti_views import bp as cti_bp
    from shared_records.intake_views import bp as intake_bp
    from shared_records.merge_views import bp as merge_bp
    from shared_records.search_views import bp as search_bp
    from shared_records.views import bp as records_bp

    load_api_modules()
    app.register_blueprint(api_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(sso_bp)
    app.register_blueprint(oauth_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(partners_bp)
    app.register_blueprint(integrations_bp)
    app.register_blueprint(sso_admin_bp)
    app.register_blueprint(records_bp)
    app.register_blueprint(search_bp)
    app.register_blueprint(intake_bp)
    app.register_blueprint(merge_bp)
    app.register_blueprint(cti_bp)
