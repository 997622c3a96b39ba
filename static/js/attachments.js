// Files attached to the message being written: picked with the attach button, pasted or
// dropped. Each is uploaded at once over HTTP (the server checks it and answers with its id,
// or a sentence saying why it is refused); the message frame then names the ids. A file shows
// in the tray above the box (an image as a thumbnail) until the message is stored, and can be
// removed before (the server forgets it too).
//
// Whether the model reads images is read from the form's data-accepts-images when a file is
// attached and when the message is sent: the model picker changes it (on the new-chat page,
// the persona).

import { el, format } from "./dom.js";

const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];

// Whether a file is of a kind the file input's `accept` names (a content type, `text/*`, or a
// name's ending): a dropped or pasted file, or one picked with "All files", is checked too.
function acceptedBy(accept, file) {
  if (!accept) return true;
  const name = file.name.toLowerCase();
  const type = (file.type || "").toLowerCase();
  return accept.split(",").some((rule) => {
    rule = rule.trim().toLowerCase();
    if (rule.startsWith(".")) return name.endsWith(rule);
    if (rule.endsWith("/*")) return type.startsWith(rule.slice(0, -1));
    return type === rule;
  });
}

// What both composers share: the 📎 button and its file input, paste and drop, the checks made
// before a file is taken (how many, how large, an image for a model that reads none) and the
// list of chips above the box. `take(file)` is each one's own.
class FileTray extends EventTarget {
  constructor(form, { strings, showError }) {
    super();
    this.form = form;
    this.strings = strings;
    this.showError = showError;
    this.tray = form.querySelector(".attachment-tray");
    this.input = form.querySelector("input[type=file]");
    this.button = form.querySelector(".attach-button");
    this.maxFiles = Number(form.dataset.maxFiles) || 1;
    this.maxBytes = Number(form.dataset.maxBytes) || Infinity;
    this.files = []; // { name, kind, chip, … }
    this.button.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => this.add([...this.input.files]));
    form.querySelector("textarea").addEventListener("paste", (event) => {
      const files = [...(event.clipboardData?.files || [])];
      if (!files.length) return;
      event.preventDefault();
      this.add(files);
    });
    form.addEventListener("dragover", (event) => {
      if (![...event.dataTransfer.types].includes("Files")) return;
      event.preventDefault();
      form.classList.add("dragging");
    });
    form.addEventListener("dragleave", () => form.classList.remove("dragging"));
    form.addEventListener("drop", (event) => {
      form.classList.remove("dragging");
      if (!event.dataTransfer.files.length) return;
      event.preventDefault();
      this.add([...event.dataTransfer.files]);
    });
  }

  get acceptsImages() {
    return this.form.dataset.acceptsImages === "true";
  }

  get hasImages() {
    return this.files.some((file) => file.kind === "image");
  }

  add(files) {
    this.showError("");
    for (const file of files) {
      if (this.files.length >= this.maxFiles) {
        this.showError(format(this.strings.tooManyFiles, { limit: this.maxFiles }));
        return;
      }
      if (!acceptedBy(this.input.accept, file)) {
        this.showError(format(this.strings.fileNotSupported, { name: file.name }));
        continue;
      }
      if (IMAGE_TYPES.includes(file.type) && !this.acceptsImages) {
        this.showError(this.strings.imagesNotAccepted);
        continue;
      }
      if (file.size > this.maxBytes) {
        this.showError(format(this.strings.fileTooLarge, { name: file.name }));
        continue;
      }
      this.take(file);
    }
  }

  chip(entry, state) {
    const chip = el("li", "attachment-chip");
    chip.dataset.state = state;
    chip.append(el("span", "attachment-name", entry.name));
    const remove = el("button", "tool", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", format(this.strings.removeAttachment, { name: entry.name }));
    remove.addEventListener("click", () => this.drop(entry, true));
    chip.append(remove);
    return chip;
  }

  drop(entry) {
    this.files = this.files.filter((file) => file !== entry);
    this.render();
    this.dispatchEvent(new Event("change"));
  }

  render() {
    this.tray.replaceChildren(...this.files.map((file) => file.chip));
    this.tray.hidden = !this.files.length;
  }
}

// The chat page's composer: each file is uploaded to the conversation at once.
export class Attachments extends FileTray {
  constructor(form, options) {
    super(form, options);
    this.uploadUrl = form.dataset.uploadUrl;
    this.input.addEventListener("change", () => {
      this.input.value = "";
    });
  }

  get uploading() {
    return this.files.some((file) => file.uploading);
  }

  get ids() {
    return this.files.filter((file) => file.id).map((file) => file.id);
  }

  // What stops the message from being sent now, as a sentence; "" when nothing does.
  problem() {
    if (this.uploading) return this.strings.attachmentsUploading;
    if (this.hasImages && !this.acceptsImages) return this.strings.imagesNotAccepted;
    return "";
  }

  take(file) {
    this.upload(file);
  }

  async upload(file) {
    const entry = { id: null, name: file.name || "image", kind: "", uploading: true };
    entry.chip = this.chip(entry, "uploading");
    this.files.push(entry);
    this.render();
    const body = new FormData();
    body.append("file", file, entry.name);
    body.append("csrfmiddlewaretoken", this.form.querySelector("[name=csrfmiddlewaretoken]").value);
    try {
      const response = await fetch(this.uploadUrl, {
        method: "POST",
        body,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(data.error || this.strings.uploadFailed);
      this.ready(entry, data);
    } catch (error) {
      this.drop(entry, false);
      this.showError(error.message && error.message !== "Failed to fetch" ? error.message : this.strings.uploadFailed);
    }
    this.dispatchEvent(new Event("change"));
  }

  // An uploaded file (as the server answered, or as the page had it: `show`) is ready to send.
  ready(entry, data) {
    Object.assign(entry, { id: data.id, kind: data.kind, name: data.name, uploading: false });
    entry.chip.dataset.state = "ready";
    entry.chip.dataset.kind = data.kind;
    entry.chip.dataset.id = data.id;
    // The thumbnail is the stored image, served to its owner (the page loads no blob: URL).
    if (data.kind === "image") {
      const image = el("img");
      image.src = data.url;
      image.alt = "";
      entry.chip.prepend(image);
    }
  }

  // Files uploaded already (the new-chat page's, sent with its first message): in the tray
  // until that message is stored, to be sent again if it is refused.
  show(uploaded) {
    for (const data of uploaded) {
      const entry = { name: data.name };
      entry.chip = this.chip(entry, "ready");
      this.ready(entry, data);
      this.files.push(entry);
    }
    this.render();
    this.dispatchEvent(new Event("change"));
  }

  // Take a file out of the tray; `discard` tells the server to forget an uploaded one.
  drop(entry, discard) {
    if (discard && entry.id) {
      const body = new FormData();
      body.append("csrfmiddlewaretoken", this.form.querySelector("[name=csrfmiddlewaretoken]").value);
      fetch(`${this.uploadUrl}${entry.id}/discard/`, { method: "POST", body, credentials: "same-origin" }).catch(() => {});
    }
    super.drop(entry);
  }

  // The message that carried the files is stored: the tray empties (the files are its now).
  clear() {
    this.files = [];
    this.render();
    this.dispatchEvent(new Event("change"));
  }
}

// The new-chat page's composer: there is no conversation to upload to yet, so the files stay in
// the form's file input and go with the form (the server checks them as it checks uploads).
// Picked, pasted or dropped, each is added to the input through a DataTransfer. Without this
// script the input itself is on the page; with it, the 📎 button stands for it.
export class PickedFiles extends FileTray {
  constructor(form, options) {
    super(form, options);
    this.input.hidden = true;
    this.button.hidden = false;
  }

  // What stops the form from being sent now, as a sentence; "" when nothing does.
  problem() {
    return this.hasImages && !this.acceptsImages ? this.strings.imagesNotAccepted : "";
  }

  take(file) {
    const entry = { name: file.name || "image", kind: IMAGE_TYPES.includes(file.type) ? "image" : "", file };
    entry.chip = this.chip(entry, "ready");
    this.files.push(entry);
  }

  add(files) {
    super.add(files);
    this.render();
    this.dispatchEvent(new Event("change"));
  }

  render() {
    super.render();
    const transfer = new DataTransfer();
    for (const entry of this.files) transfer.items.add(entry.file);
    this.input.files = transfer.files;
  }
}

// A message's files, as templates/conversations/_attachments.html draws them.
export function attachmentList(attachments, strings) {
  const list = el("ul", "attachments");
  list.setAttribute("aria-label", strings.attachedFiles);
  for (const file of attachments) {
    const item = el("li", "attachment");
    item.dataset.kind = file.kind;
    const link = el("a");
    link.href = file.url;
    if (file.kind === "image") {
      link.className = "attachment-image";
      link.target = "_blank";
      link.rel = "noopener";
      link.title = file.name;
      const image = el("img");
      image.src = file.url;
      image.alt = file.name;
      if (file.width) image.width = file.width;
      if (file.height) image.height = file.height;
      image.loading = "lazy";
      link.append(image);
    } else {
      link.className = "attachment-file";
      const icon = el("span", "", file.kind === "pdf" ? "📕" : "📄");
      icon.setAttribute("aria-hidden", "true");
      link.append(icon, " ", el("span", "attachment-name", file.name));
    }
    item.append(link);
    list.append(item);
  }
  return list;
}
