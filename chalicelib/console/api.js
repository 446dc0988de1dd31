// The HTTP API, called with the key kept in this tab's sessionStorage (never in a URL).

const KEY_NAME = "skillharbor.api_key";

export function savedKey() { return sessionStorage.getItem(KEY_NAME); }
export function saveKey(key) { sessionStorage.setItem(KEY_NAME, key); }
export function forgetKey() { sessionStorage.removeItem(KEY_NAME); }

/** An API refusal: the status, the API's own error word and message. */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.message || body.Message)) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.error = (body && body.error) || null;
    this.problems = (body && Array.isArray(body.problems)) ? body.problems : [];
  }
}

// Where the API is: this page's path without its last segment ("/console" locally, "/<stage>/console"
// behind API Gateway), so the console and the API it calls always share an origin and a stage.
const BASE = window.location.pathname.replace(/\/console\/?$/, "");

/** Call the API: JSON in and out; an ApiError for any non-2xx answer. */
export async function call(method, path, { query, body } = {}) {
  const url = new URL(BASE + path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { "Accept": "application/json" };
  const key = savedKey();
  if (key) headers["Authorization"] = `Bearer ${key}`;
  const init = { method, headers, credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (failure) {
    throw new ApiError(0, { message: `the API could not be reached (${failure.message})` });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text.slice(0, 300) }; }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A path segment, encoded (ids come from the API, and may hold anything). */
export function seg(value) { return encodeURIComponent(String(value)); }
