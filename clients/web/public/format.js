/**
 * Small shared helpers of the web client: how durations and sign-in codes are written, and
 * saving a file a route answers (routes that need a key or token cannot be plain links).
 */

/**
 * Seconds as m:ss (or h:mm:ss past an hour).
 * @param {number} seconds
 */
export function formatDuration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const s = String(total % 60).padStart(2, '0');
  const m = Math.floor(total / 60) % 60;
  const h = Math.floor(total / 3600);
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** What was typed as a sign-in code, as the server reads it: capitals, no spaces or dashes. */
export function normaliseSigninCode(typed) {
  return typed.toUpperCase().replace(/[\s-]+/g, '');
}

/** A sign-in code as the teacher's sheet prints it and a student reads it: two groups of four. */
export function groupSigninCode(typed) {
  const code = normaliseSigninCode(typed);
  return code.length > 4 ? `${code.slice(0, 4)} ${code.slice(4)}` : code;
}

/** The file name a Content-Disposition header gives, or null. */
export function attachmentName(header) {
  if (!header) return null;
  const encoded = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  let name = null;
  if (encoded) {
    try {
      name = decodeURIComponent(encoded[1].trim());
    } catch {
      name = null;
    }
  }
  name ??= /filename\s*=\s*"([^"]*)"/i.exec(header)?.[1] ?? /filename\s*=\s*([^;\s]+)/i.exec(header)?.[1] ?? null;
  const safe = name?.replace(/[\\/\0-\x1f]/g, '_').trim();
  return safe || null;
}

/**
 * Save a fetched response's body as a file, under the name its Content-Disposition gives
 * (else ``fallbackName``): the bytes become a Blob behind a temporary link.
 * @param {Response} response
 * @param {string} fallbackName
 */
export async function saveResponse(response, fallbackName) {
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = attachmentName(response.headers.get('Content-Disposition')) ?? fallbackName;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000); // the download has long started by then
}
