// ui.js: what every page shares beyond building elements — the
// confirmation dialog and reporting a refused action.
import { replace } from './dom.js';

const banner = () => document.getElementById('banner');

/**
 * confirmDialog asks before an action. extra (optional) is a node put in
 * the dialog, e.g. an input; resolves true when confirmed.
 */
export function confirmDialog({ title, text, confirm = 'Confirm', keep = 'Keep', extra = null, danger = true }) {
  const dlg = document.getElementById('dialog');
  document.getElementById('dialog-title').textContent = title;
  document.getElementById('dialog-text').textContent = text;
  replace(document.getElementById('dialog-extra'), extra);
  const yes = document.getElementById('dialog-yes');
  yes.textContent = confirm;
  yes.className = danger ? 'danger' : '';
  document.getElementById('dialog-no').textContent = keep;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'yes'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
    (extra && extra.querySelector && extra.querySelector('input')) ? extra.querySelector('input').focus() : document.getElementById('dialog-no').focus();
  });
}

/** act runs a mutating call and reports its failure in the banner. */
export async function act(fn) {
  try {
    await fn();
    banner().hidden = true;
    return true;
  } catch (e) {
    banner().textContent = `Refused: ${e.message}`;
    banner().hidden = false;
    return false;
  }
}

