// The public API over fetch: JSON answers, and problem documents (RFC 9457) as ApiError.

const JSON_ONLY = { headers: { Accept: 'application/json' } };

export const enc = encodeURIComponent;

class ApiError extends Error {
  constructor(status, problem, path) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.path = path;
  }
}

export async function api(path) {
  let response;
  try {
    response = await fetch(path, JSON_ONLY);
  } catch {
    throw new ApiError(0, { detail: 'the API did not answer' }, path);
  }
  const type = response.headers.get('content-type') || '';
  const body = type.includes('json') ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, body, path);
  return body;
}

// A health report, whatever the status: a 503 from /health/detailed still carries the report.
export async function healthReport(path) {
  try {
    const response = await fetch(path, JSON_ONLY);
    return await response.json();
  } catch {
    return null;
  }
}
