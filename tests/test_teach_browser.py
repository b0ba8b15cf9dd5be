"""The teaching page in a real browser: headless Chromium, driven over its DevTools protocol.

Chromium opens the page from a file with the network switched off (``Network.emulateNetworkConditions``
offline, and every host name unresolvable), the test moves each slider with the keyboard (trusted key
events from ``Input.dispatchKeyEvent``), and after every key press reads what the page displays: the
slider's value and ``aria-valuetext``, the label gap of every group, every group's share of the
flagged and of the highest need. Each must equal the precomputed value for that grid point, formatted
as the page formats it. Every request the page makes is recorded: only the page's own file may be
requested. Any console error or uncaught exception fails the test.

The protocol runs over ``--remote-debugging-pipe`` (messages of JSON separated by NUL bytes on file
descriptors 3 and 4), so no port is opened and no extra package is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import time

import pytest

from phm_audit.teach._text import LABEL_WORDS, Grid, capacity_words, count, fixed, gap_words, pct

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
BASH = shutil.which("bash")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed (Debian package 'chromium'); .ci/run installs it"
    ),
    pytest.mark.skipif(BASH is None, reason="bash is needed to hand Chromium its DevTools pipe"),
]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
KEYS = {"ArrowRight": 39, "ArrowLeft": 37, "ArrowUp": 38, "Home": 36, "End": 35}


class DevTools:
    """A minimal client of Chromium's DevTools protocol over ``--remote-debugging-pipe``."""

    def __init__(self, profile: str) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # bash puts the pipes on descriptors 3 and 4, where Chromium expects them, then becomes Chromium
        # (bash, not sh: dash cannot redirect descriptors above 9)
        script = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}'
        self.proc = subprocess.Popen(
            [BASH, "-c", script, CHROMIUM, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}"],
            pass_fds=(to_browser_r, from_browser_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for reply in self._read(deadline):
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method:
                    return event
            self.events.extend(self._read(deadline))

    def _read(self, deadline: float) -> list[dict]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("Chromium did not answer in time")
        ready, _, _ = select.select([self._from_browser], [], [], left)
        if not ready:
            raise TimeoutError("Chromium did not answer in time")
        chunk = os.read(self._from_browser, 1 << 20)
        if not chunk:
            raise RuntimeError("Chromium closed the DevTools pipe")
        self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        return [json.loads(m) for m in messages if m]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


STATE_JS = """(() => {
  const text = id => { const el = document.getElementById(id); return el ? el.textContent : null; };
  const out = {ready: document.documentElement.getAttribute('data-ready'), sliders: {}, cells: {}};
  for (const id of ['gap', 'capacity', 'label']) {
    const el = document.getElementById(id);
    out.sliders[id] = {value: Number(el.value), text: el.getAttribute('aria-valuetext'), out: text(id + '-out')};
  }
  for (const el of document.querySelectorAll('[id^="fs-"], [id^="hn-"], [id^="lg-"]')) {
    out.cells[el.id] = el.textContent;
  }
  out.headline = text('label-gap-headline');
  out.focused = document.activeElement ? document.activeElement.id : null;
  return JSON.stringify(out);
})()"""


def _interval(entry: dict) -> str:
    if entry["lo"] == 1 and entry["hi"] == 1:
        return "reference group"
    if entry["value"] is None:
        return f"not available ({entry['reason'] or 'undefined'})"
    return (
        f"{fixed(entry['value'], 2)} (95% interval {fixed(entry['lo'], 2)} to {fixed(entry['hi'], 2)}; "
        f"n = {count(entry['n'])})"
    )


def _expected(data: dict, g: int, c: int, label: int) -> dict:
    """What the page must display at grid point (g, c, label), from the embedded precomputed values."""
    model = data["labels"][label]
    point = data["points"][g]
    cells = {}
    for attribute in data["attributes"]:
        sweep = point["sweep"][model][attribute]
        for i, group in enumerate(data["groups"][attribute]):
            key = f"{attribute}-{group}"
            for short in ("fs", "hn"):
                value = sweep[short][i][c]
                if value is not None:
                    cells[f"{short}-{key}"] = pct(value)
            cells[f"lg-{key}"] = _interval(point["label_gap"][model][attribute][i])
    return {
        "sliders": {
            "gap": gap_words(data["gaps"][g]) + " less planned care at equal need",
            "capacity": f"top {capacity_words(data['capacities'][c])} of scores",
            "label": LABEL_WORDS[model],
        },
        "cells": cells,
    }


def _check(state: dict, data: dict, g: int, c: int, label: int) -> None:
    assert [state["sliders"][s]["value"] for s in ("gap", "capacity", "label")] == [g, c, label]
    want = _expected(data, g, c, label)
    for slider, text in want["sliders"].items():
        assert state["sliders"][slider]["text"] == text
        assert state["sliders"][slider]["out"] == text
    for cell, text in want["cells"].items():
        assert state["cells"][cell] == text, (cell, g, c, label)
    q1 = data["groups"]["imd_quintile"].index("1")
    assert state["headline"] == _interval(data["points"][g]["label_gap"][data["labels"][label]]["imd_quintile"][q1])


def test_sliders_move_with_the_keyboard_to_the_precomputed_values_offline(teach_built, tmp_path):
    drive(teach_built["page"], teach_built["data"], tmp_path / "profile")


def drive(page, data: dict, profile) -> None:
    """Open ``page`` offline, move every slider with the keyboard, check each display against ``data``."""
    url = page.resolve().as_uri()
    browser = DevTools(str(profile))
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            session=session,
        )
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired")

        def state() -> dict:
            reply = browser.send("Runtime.evaluate", {"expression": STATE_JS, "returnByValue": True}, session=session)
            return json.loads(reply["result"]["value"])

        def press(slider: str, key: str) -> dict:
            browser.send(
                "Runtime.evaluate", {"expression": f"document.getElementById('{slider}').focus()"}, session=session
            )
            for kind in ("keyDown", "keyUp"):
                browser.send(
                    "Input.dispatchKeyEvent",
                    {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": KEYS[key]},
                    session=session,
                )
            now = state()
            assert now["focused"] == slider
            return now

        grid = Grid(data)
        first = state()
        assert first["ready"] == "1"
        g, c, label = first["sliders"]["gap"]["value"], grid.cap_index(0.03), 0
        _check(first, data, g, c, label)
        last_gap = len(data["gaps"]) - 1
        # the access gap: Home to 0%, then step right to the largest gap, checking each point
        seen_headlines = set()
        now = press("gap", "Home")
        g = 0
        _check(now, data, g, c, label)
        seen_headlines.add(now["headline"])
        while g < last_gap:
            now = press("gap", "ArrowRight")
            g += 1
            _check(now, data, g, c, label)
            seen_headlines.add(now["headline"])
        assert len(seen_headlines) == len(data["gaps"])  # the displayed label gap changed at every step
        # capacity: three steps up and one back
        for key, step in (("ArrowRight", 1), ("ArrowUp", 1), ("ArrowRight", 1), ("ArrowLeft", -1)):
            before = now["cells"]
            now = press("capacity", key)
            c += step
            _check(now, data, g, c, label)
            assert now["cells"] != before
        # every label, and back to the first with Home
        for _ in range(len(data["labels"]) - 1):
            now = press("label", "ArrowRight")
            label += 1
            _check(now, data, g, c, label)
        now = press("label", "Home")
        label = 0
        _check(now, data, g, c, label)
        # the end of the capacity range
        now = press("capacity", "End")
        c = len(data["capacities"]) - 1
        _check(now, data, g, c, label)
    finally:
        browser.close()
    errors = [
        e
        for e in browser.events
        if (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert not errors, errors
    requests = [e["params"]["request"]["url"] for e in browser.events if e.get("method") == "Network.requestWillBeSent"]
    assert requests == [url]  # the page itself, and nothing else
