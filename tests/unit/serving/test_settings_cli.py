"""Settings from RECSYS_* environment variables; `recsys serve` refuses to start without a bundle."""

from __future__ import annotations

from pathlib import Path

from recsys.cli import main as recsys_main
from serving.settings import Settings, get_settings


def test_settings_read_the_recsys_env_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_INDEX_ROOT", str(tmp_path))
    monkeypatch.setenv("RECSYS_K_MAX", "50")
    monkeypatch.setenv("RECSYS_OPEN_READS", "true")
    get_settings.cache_clear()
    try:
        s = get_settings()
        assert s.index_root == Path(tmp_path) and s.k_max == 50 and s.open_reads is True
        assert get_settings() is s  # cached
    finally:
        get_settings.cache_clear()
    assert Settings(k_max=7).k_max == 7


def test_serve_without_a_bundle_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RECSYS_INDEX_ROOT", raising=False)
    assert recsys_main(["serve", "--index", str(tmp_path / "none")]) == 2
    assert "no published bundle" in capsys.readouterr().err
    get_settings.cache_clear()


def test_demo_serves_reads_with_a_key_it_prints(monkeypatch, capsys):
    """`recsys demo` makes a read key when none is set; its curl and its page URL (#key=) send it."""
    from recsys.commands.demo import _read_key
    from serving.settings import Settings

    for name in ("RECSYS_READ_API_KEY", "RECSYS_API_KEY", "RECSYS_OPEN_READS"):
        monkeypatch.delenv(name, raising=False)
    made = _read_key()
    key = Settings().read_api_key
    assert key and made == key and key in capsys.readouterr().out
    monkeypatch.setenv("RECSYS_READ_API_KEY", "mine")
    assert _read_key() == "mine"
    monkeypatch.setenv("RECSYS_OPEN_READS", "true")
    assert _read_key() is None


def test_served_connections_have_tcp_nodelay():
    """Every connection the server accepts sends without Nagle's delay: a response is written as
    head then body, and with Nagle on the body waits for the client's delayed ACK (40 ms)."""
    import socket

    from serving.cli import listen

    sock = listen("127.0.0.1", 0)
    try:
        sock.listen()
        client = socket.create_connection(sock.getsockname())
        conn, _ = sock.accept()
        with client, conn:
            assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()


def test_serve_runs_the_app_on_the_nodelay_socket(tmp_path, monkeypatch):
    """`recsys serve` starts uvicorn through serving.cli.serve (one worker: the app object; several:
    the import string the workers load)."""
    import serving.cli as cli

    monkeypatch.delenv("RECSYS_INDEX_ROOT", raising=False)  # restored after (run sets it from --index)
    calls = []
    monkeypatch.setattr(cli, "serve", lambda app, host, port, workers, **kw: calls.append((app, host, port, workers)))
    monkeypatch.setattr("index.bundle.resolve", lambda root: root)
    monkeypatch.setattr("serving.app.create_app", lambda settings: "app-object")
    assert recsys_main(["serve", "--index", str(tmp_path), "--port", "8123", "--workers", "2"]) == 0
    assert recsys_main(["serve", "--index", str(tmp_path), "--port", "8124"]) == 0
    assert calls == [("serving.main:app", "127.0.0.1", 8123, 2), ("app-object", "127.0.0.1", 8124, 1)]
    get_settings.cache_clear()
