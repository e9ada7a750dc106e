/**
 * Starts a browser download of a same-origin URL under a file name (browser mode exports).
 *
 * @example
 * ```ts
 * downloadUrl('/files/ab12...?download=Book.pdf', 'Book.pdf');
 * ```
 */
export function downloadUrl(url: string, fileName: string): void {
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.rel = 'noopener';
  document.body.append(a);
  a.click();
  a.remove();
}
