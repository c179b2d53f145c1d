// waveform.js: draws the overview an audio.waveform job carries inline
// in its result (result.overview: per channel and column the minimum and
// maximum, ±1) on a canvas. The picture and the peak file stay on the
// processor's disk: the server need not, and does not, read them.

/** waveformOf returns the job's inline overview, or null. */
export function waveformOf(job) {
  const ov = job && job.type === 'audio.waveform' && job.state === 'succeeded' && job.result && job.result.overview;
  return ov && ov.columns > 0 && Array.isArray(ov.min) && Array.isArray(ov.max) ? ov : null;
}

/** waveformCanvas draws an overview: one lane per channel, stacked. */
export function waveformCanvas(ov, { width = 1024, lane = 96, label = 'Waveform' } = {}) {
  const channels = ov.min.length;
  const canvas = document.createElement('canvas');
  canvas.className = 'waveform';
  canvas.width = width;
  canvas.height = lane * channels;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', `${label}: ${channels} channel(s), ${ov.columns} columns`);
  canvas.dataset.columns = String(ov.columns);
  const g = canvas.getContext('2d');
  const css = getComputedStyle(document.documentElement);
  g.fillStyle = '#06090d';
  g.fillRect(0, 0, canvas.width, canvas.height);
  const step = width / ov.columns;
  for (let c = 0; c < channels; c++) {
    const mid = c * lane + lane / 2, half = (lane - 4) / 2;
    g.fillStyle = css.getPropertyValue('--line').trim() || '#2b3846';
    g.fillRect(0, Math.round(mid), width, 1);
    g.fillStyle = css.getPropertyValue('--accent').trim() || '#7cc4ff';
    for (let x = 0; x < ov.columns; x++) {
      const hi = Math.max(-1, Math.min(1, Number(ov.max[c][x]) || 0));
      const lo = Math.max(-1, Math.min(1, Number(ov.min[c][x]) || 0));
      const y0 = mid - hi * half, y1 = mid - lo * half;
      g.fillRect(x * step, y0, Math.max(1, step - 0.5), Math.max(1, y1 - y0));
    }
  }
  return canvas;
}
