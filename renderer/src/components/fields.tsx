import { useEffect, useState } from 'react';

/**
 * A number input that commits only valid values and says why a value is refused, right under it.
 * While the text is being typed ("0." or "-") nothing is committed.
 */
export function NumberField({
  label,
  value,
  onCommit,
  min,
  max,
  step = 1,
  integer = false,
  title,
  testId,
}: {
  label: string;
  value: number;
  onCommit: (value: number) => void;
  min?: number;
  max?: number;
  step?: number;
  integer?: boolean;
  title?: string;
  testId?: string;
}) {
  const [draft, setDraft] = useState<string | null>(null);
  useEffect(() => setDraft(null), [value]);
  const text = draft ?? String(value);
  const problem = draft === null ? null : check(draft, { min, max, integer });
  return (
    <label className={`field${problem ? ' invalid' : ''}`} title={title}>
      <span>{label}</span>
      <input
        type="number"
        inputMode={integer ? 'numeric' : 'decimal'}
        value={text}
        min={min}
        max={max}
        step={step}
        data-testid={testId}
        onChange={(e) => {
          const next = e.target.value;
          setDraft(next);
          if (check(next, { min, max, integer }) === null && Number(next) !== value) onCommit(Number(next));
        }}
        onBlur={() => setDraft(null)}
      />
      {problem && <span className="error-text">{problem}</span>}
    </label>
  );
}

function check(
  text: string,
  { min, max, integer }: { min?: number; max?: number; integer: boolean },
): string | null {
  if (text.trim() === '') return 'Enter a number';
  const n = Number(text);
  if (!Number.isFinite(n)) return 'Enter a number';
  if (integer && !Number.isInteger(n)) return 'Enter a whole number';
  if (min !== undefined && n < min) return `At least ${min}`;
  if (max !== undefined && n > max) return `At most ${max}`;
  return null;
}

/** Offers a file as a download (OpenPose JSON export). */
export function downloadText(name: string, text: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
