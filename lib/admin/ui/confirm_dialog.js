// @ts-check
/// <reference lib="dom" />
/**
 * A modal confirmation for destructive actions (kick, discard, delete), as a `<dialog>` so tests and keyboards can
 * drive it (`confirm-ok`, `confirm-cancel`), unlike `window.confirm`.
 *
 * @module
 */

import { h, replace } from "./dom.js";

/** @type {HTMLDialogElement | undefined} */
let dialog;

/**
 * Asks the user to confirm `message`; resolves to true only on the confirm button.
 * @param {string} message
 * @param {string} [action] the confirm button's label
 * @returns {Promise<boolean>}
 */
export function confirmAction(message, action = "Confirm") {
  if (dialog === undefined) {
    dialog = /** @type {HTMLDialogElement} */ (h("dialog", { class: "confirm", testid: "confirm-dialog" }));
    document.body.appendChild(dialog);
  }
  const box = dialog;
  return new Promise((resolve) => {
    const ok = h("button", { type: "button", class: "danger", testid: "confirm-ok" }, action);
    const cancel = h("button", { type: "button", testid: "confirm-cancel" }, "Cancel");
    /** @param {boolean} answer */
    const finish = (answer) => {
      box.removeEventListener("cancel", onCancel);
      if (box.open) box.close();
      resolve(answer);
    };
    const onCancel = () => finish(false);
    ok.addEventListener("click", () => finish(true));
    cancel.addEventListener("click", () => finish(false));
    box.addEventListener("cancel", onCancel);
    replace(box, h("p", { testid: "confirm-message" }, message), h("div", { class: "actions" }, cancel, ok));
    box.showModal();
    cancel.focus();
  });
}
