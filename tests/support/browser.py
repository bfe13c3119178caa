"""The browser tests' Chromium: Debian's, driven by Playwright (never a downloaded browser).

Tests take the ``browser`` fixture (``tests/conftest.py``, one Chromium per test module) or, for
a browser of their own, ``with chromium() as browser:``.
"""
from contextlib import contextmanager

CHROMIUM = "/usr/bin/chromium"
# --no-sandbox: the tests run as root in CI; the rest keeps Chromium off the (closed) network.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]

#: JavaScript: how many pixels the report chart painted on its canvas (0 when there is no chart).
DRAWN = """() => {
  const c = document.getElementById('report-chart');
  const chart = window.Chart && Chart.getChart(c);
  if (!chart || c.width === 0) return 0;
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
  return n;
}"""


@contextmanager
def chromium():
    """A headless Debian Chromium under Playwright, closed on leaving the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page, base_url: str, username: str, password: str) -> None:
    """Sign in through the login form (Enter in the password field); returns once the browser
    has left the login page (a wrong password times out here)."""
    page.goto(base_url + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda u: "/login" not in u, timeout=10_000)


def open_page(browser, ga_cookie: str | None = None, url: str = ""):
    """A fresh browser context and page that collects JavaScript errors: ``(ctx, page, errors)``;
    ``ga_cookie`` sets Google Analytics' ``_ga`` cookie for ``url`` first."""
    ctx = browser.new_context()
    if ga_cookie:
        ctx.add_cookies([{"name": "_ga", "value": ga_cookie, "url": url}])
    page = ctx.new_page()
    errors: list = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return ctx, page, errors
