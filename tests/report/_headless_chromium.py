"""A small client for headless Chromium over the DevTools protocol, with no dependency.

Chromium started with ``--remote-debugging-pipe`` reads protocol messages from file
descriptor 3 and writes to 4, each a JSON text ended by a NUL byte: no websocket
client is needed. :func:`render` opens a file, waits for its load event, and returns
the console messages, JavaScript exceptions, failed loads, the state of every image
and a PNG screenshot.

Example:
    >>> page = render(Path("report.html"), Path("shot.png"))     # doctest: +SKIP
    >>> page.problems()                                           # doctest: +SKIP
    []
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser")


def find_chromium() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


@dataclass
class Page:
    console: list[dict[str, Any]] = field(default_factory=list)  # Runtime.consoleAPICalled params
    exceptions: list[dict[str, Any]] = field(default_factory=list)  # Runtime.exceptionThrown params
    log_entries: list[dict[str, Any]] = field(default_factory=list)  # Log.entryAdded entries
    failed_loads: list[dict[str, Any]] = field(default_factory=list)  # Network.loadingFailed params
    requests: list[str] = field(default_factory=list)  # every URL the page requested
    images: list[dict[str, Any]] = field(default_factory=list)  # {src, complete, width, height}
    title: str = ""
    text_length: int = 0

    def problems(self) -> list[str]:
        """Console errors, exceptions, error log entries, failed loads, broken images."""
        found = [f"console.{m['type']}: {m.get('args')}" for m in self.console if m["type"] in ("error", "assert")]
        found += [f"exception: {e.get('exceptionDetails', {}).get('text')}" for e in self.exceptions]
        found += [f"log {e.get('level')}: {e.get('text')} ({e.get('url', '')})" for e in self.log_entries
                  if e.get("level") == "error"]
        found += [f"load failed: {f.get('errorText')}" for f in self.failed_loads]
        found += [f"image not loaded: {i['src'][:60]}" for i in self.images
                  if not i["complete"] or i["width"] == 0 or i["height"] == 0]
        return found


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int, timeout: float) -> None:
        self.write_fd, self.read_fd, self.timeout = write_fd, read_fd, timeout
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        return self.next_id

    def receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.read_fd], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self.read_fd, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict[str, Any]:
        ident = self.send(method, params, session)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self.receive(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self.receive(deadline))


def render(html: Path, screenshot: Path, width: int = 1200, timeout: float = 60.0) -> Page:
    """Load ``html`` in headless Chromium; collect what went wrong; save a full-page PNG."""
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("chromium is not installed (scripts/system-deps-report.txt; "
                                "run sh scripts/install-system-deps.sh)")
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def child_fds() -> None:  # in the child: Chromium reads fd 3 and writes fd 4
        a, b = os.dup(to_browser_r), os.dup(from_browser_w)  # first out of the way of 3 and 4
        os.dup2(a, 3)
        os.dup2(b, 4)
        os.set_inheritable(3, True)  # dup2 onto itself keeps close-on-exec
        os.set_inheritable(4, True)

    profile = tempfile.mkdtemp(prefix="lstmlite-chromium-")
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
            "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]
    # close_fds=False: pass_fds would need 3 and 4 open in this process; every other fd
    # Python opened is close-on-exec anyway.
    proc = subprocess.Popen(args, close_fds=False, preexec_fn=child_fds, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(to_browser_r)
    os.close(from_browser_w)
    pipe = _Pipe(to_browser_w, from_browser_r, timeout)
    page = Page()
    try:
        target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            pipe.call(f"{domain}.enable", session=session)
        pipe.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        pipe.call("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
        pipe.wait_for("Page.loadEventFired")
        probe = ("JSON.stringify({title: document.title, text: document.body.innerText.length,"
                 " images: [...document.images].map(i => ({src: i.currentSrc || i.src, complete: i.complete,"
                 " width: i.naturalWidth, height: i.naturalHeight})),"
                 " height: document.documentElement.scrollHeight})")
        state = json.loads(pipe.call("Runtime.evaluate", {"expression": probe, "returnByValue": True},
                                     session=session)["result"]["value"])
        page.title, page.text_length, page.images = state["title"], state["text"], state["images"]
        shot = pipe.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
            "x": 0, "y": 0, "width": width, "height": min(int(state["height"]), 16000), "scale": 1}},
            session=session)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        for event in pipe.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled":
                page.console.append(params)
            elif method == "Runtime.exceptionThrown":
                page.exceptions.append(params)
            elif method == "Log.entryAdded":
                page.log_entries.append(params.get("entry", {}))
            elif method == "Network.loadingFailed":
                page.failed_loads.append(params)
            elif method == "Network.requestWillBeSent":
                page.requests.append(params.get("request", {}).get("url", ""))
        try:
            pipe.call("Browser.close")
        except (EOFError, TimeoutError, RuntimeError):
            pass
    finally:
        os.close(to_browser_w)
        os.close(from_browser_r)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return page
