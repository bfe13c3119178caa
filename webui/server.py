"""The production WSGI server (waitress) for `calltracking web` and `calltracking run`.

``make_server(config, sessionmaker)`` returns a waitress server object: ``.run()`` serves
until ``.close()`` is called (from another thread or a signal handler); ``.effective_port``
is the bound port (useful with port 0).
"""
from __future__ import annotations

import logging
import threading
import types

from waitress import create_server
from waitress import wasyncore

from webui import create_app

log = logging.getLogger(__name__)


def _shutdown(self):
    try:
        self.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    finally:
        wasyncore.close_all(self._map)


def _run(self):
    """Serve until :func:`_close`; the sockets are closed here, in the serving thread."""
    self._ct_running = True
    try:
        while self._map and not self._ct_stop.is_set():
            wasyncore.loop(timeout=self.adj.asyncore_loop_timeout, map=self._map,
                           use_poll=self.adj.asyncore_use_poll, count=1)
    finally:
        try:
            _shutdown(self)
        finally:
            self._ct_running = False
            self._ct_done.set()


def _close(self, timeout: float = 10.0):
    """Stop serving (from any thread or a signal handler); waits for ``run()`` to finish."""
    self._ct_stop.set()
    if not self._ct_running:
        if not self._ct_done.is_set():
            self._ct_done.set()
            _shutdown(self)
        return
    try:
        self.pull_trigger()
    except OSError:
        pass
    if threading.current_thread() is not self._ct_thread:
        self._ct_done.wait(timeout)


def make_server(config, sessionmaker=None, app=None, testing: bool = False):
    """A waitress server for the web UI on ``[web] listen`` with ``[web] threads`` threads."""
    if app is None:
        app = create_app(config, sessionmaker, testing=testing)
    host, port = config.web.listen
    # waitress trusts at most one proxy address; with [web] trusted_proxies the application's
    # TrustedProxies middleware decides (and drops the headers of untrusted peers), without
    # them waitress drops every forwarded header itself
    server = create_server(app, host=host, port=port, threads=config.web.threads,
                           ident="calltracking",
                           clear_untrusted_proxy_headers=not config.web.trusted_proxies,
                           channel_timeout=120)
    server._ct_stop = threading.Event()
    server._ct_done = threading.Event()
    server._ct_running = False
    server._ct_thread = None
    plain_run = types.MethodType(_run, server)

    def run():
        server._ct_thread = threading.current_thread()
        plain_run()

    server.run = run
    server.close = types.MethodType(_close, server)
    server.application = app
    log.info("web UI listening on http://%s:%s/", host, server.effective_port)
    return server
