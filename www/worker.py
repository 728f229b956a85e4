"""The page's Python worker: hands over to py_browser.app, and says so on the page if that fails.

It runs in a PyScript worker so that training never freezes the page, and reaches the page's DOM through
PyScript's synchronous proxy (which needs the cross-origin isolation headers the server sends). PyScript has
installed our wheels (www/dist/runtime.json) before this runs.
"""

from pyscript import document

try:
    from py_browser.app import start

    await start()  # noqa: F704 -- PyScript runs worker code with top-level await
except Exception as e:  # the page must say what went wrong rather than spin forever
    status = document.getElementById("status")
    status.dataset.state = "error"
    status.dataset.webgpu = status.dataset.webgpu or "none"
    document.getElementById("progress").textContent = f"PyDisco failed to start: {type(e).__name__}: {e}"
    raise
