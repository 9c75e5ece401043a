// The dashboard's controls. Each <form data-control="METHOD /_emulator/..."> calls that control-plane route
// with a JSON body built from its fields (data-type="number" | "lines"; data-optional: left out when empty;
// data-body: fixed JSON), sending the control token as the X-Fal-Emulator-Token header. The page itself
// changes nothing: the control plane does, and the live panels refresh (SSE, or the fal:changed event).

const tokenMeta = document.querySelector('meta[name="fal-emulator-token"]');
const token = tokenMeta ? tokenMeta.content : null;

function bodyOf(form) {
  const body = form.dataset.body ? JSON.parse(form.dataset.body) : {};
  for (const field of form.elements) {
    if (!field.name || field.disabled) continue;
    const raw = field.value;
    if ("optional" in field.dataset && raw === "") continue;
    if (field.dataset.type === "number") body[field.name] = Number(raw);
    else if (field.dataset.type === "lines") body[field.name] = raw.split("\n").map((line) => line.trim()).filter(Boolean);
    else body[field.name] = raw;
  }
  return body;
}

function describe(answer) {
  try {
    const parsed = JSON.parse(answer);
    const detail = parsed && typeof parsed === "object" && "detail" in parsed ? parsed.detail : parsed;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  } catch {
    return answer;
  }
}

async function call(form) {
  const [method, path] = form.dataset.control.split(" ");
  const headers = { Accept: "application/json" };
  if (token) headers["X-Fal-Emulator-Token"] = token;
  const init = { method, headers, credentials: "same-origin" };
  if (method === "POST" || method === "PUT") {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(bodyOf(form));
  }
  const result = document.getElementById("control-result");
  const button = form.querySelector("button");
  if (button) button.disabled = true;
  try {
    const response = await fetch(path, init);
    const answer = await response.text();
    result.textContent = `${method} ${path} → ${response.status}` + (response.ok ? "" : `: ${describe(answer)}`);
    result.className = response.ok ? "ok" : "error";
    result.dataset.status = String(response.status);
  } catch (error) {
    result.textContent = `${method} ${path} failed: ${error}`;
    result.className = "error";
    result.dataset.status = "0";
  } finally {
    if (button) button.disabled = false;
  }
  htmx.trigger(document.body, "fal:changed");
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.control) return;
  event.preventDefault();
  call(form);
});

// A filter applies as soon as it changes.
document.addEventListener("change", (event) => {
  const form = event.target.form;
  if (form && form.id === "filters") form.requestSubmit();
});

// The page's own fragments accept the cookie; send the header as well, for pages opened with the header.
document.body.addEventListener("htmx:configRequest", (event) => {
  if (token) event.detail.headers["X-Fal-Emulator-Token"] = token;
});
