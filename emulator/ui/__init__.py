"""The dashboard: `GET /_emulator/ui`, a page served by the emulator itself (Jinja2 and htmx, no build step).

What it shows and does:

- the requests, live (SSE): endpoint, request id, status, `queue_position`, age, policy, scenario and
  the price fal would have charged; filtered by endpoint, status and error type; 50 to a page;
- one request: its timeline on the emulator's clock, its input (with input images), its logs as they
  arrive, its output (the MP4 plays in a `<video>`, with Range requests) or error body, its webhook
  attempts with their signature checked against the emulator's JWKS, and its journal entries;
- controls that call the control plane (`/_emulator/...`): complete, fail (any error of
  `fal_emulator.failures`), cancel or step a request; advance, freeze or scale the clock; set the
  policy; script the next outcomes; reset. The page adds no way of its own to change state;
- totals: requests by status and by error type, median seconds in each state, spend avoided.

Modules: `model` (the read model, no HTTP; the control plane's JSON uses it too), `prices` (reads
`contracts/prices.yaml` without importing the contract kit), `render` (Jinja2 and display helpers),
`routes` (Starlette). `templates/` and `static/` (htmx 2 and its SSE extension, vendored with their
licence, and the page's own script and style) ship in the package.

Access follows the control plane's rule: with a control token (set with `--control-token`, or generated
when the server listens beyond loopback) open `/_emulator/ui?token=TOKEN` once; the answer keeps it in an
HttpOnly, SameSite=Strict cookie and redirects to the URL without it. The page sends the token to the
control plane as the `X-Fal-Emulator-Token` header, the only form the control plane accepts, so another
site cannot drive it through the cookie.
"""
