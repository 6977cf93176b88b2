// The chat page of the Telegram stand-in. Everything the person does goes through the
// stand-in's control API, which turns it into the webhook POST Telegram would send; everything
// the bot does arrives on one server-sent event stream. Text is only ever put into the page
// as DOM text nodes (formatting comes from Telegram's entities), never parsed as HTML.
"use strict";

const NAMES = ["Anna", "Boris", "Clara", "Dmitri", "Elena", "Felix", "Galina", "Hugo"];
const ACTIONS = {
  typing: "typing…",
  upload_photo: "sending a photo…",
  record_video: "recording a video…",
  upload_video: "sending a video…",
  upload_document: "sending a file…",
};
const ACTION_SHOWN_MS = 5000; // how long Telegram shows a chat action
const TOAST_MS = 2500;
const ENTITY_TAGS = {
  bold: "b",
  italic: "i",
  underline: "u",
  strikethrough: "s",
  code: "code",
  spoiler: "span",
  blockquote: "blockquote",
  expandable_blockquote: "blockquote",
  mention: "span",
  hashtag: "span",
  cashtag: "span",
  phone_number: "span",
  text_mention: "span",
  custom_emoji: "span",
};
// Telegram links commands and URLs in any text; the stand-in only marks a user's leading
// command, so the rest is found here.
const AUTO_LINK = /(^|[\s(])(\/[A-Za-z0-9_]{1,32}|https?:\/\/[^\s<>"]+)/g;

const $ = (id) => document.getElementById(id);
const me = whoAmI();
const messages = new Map(); // message_id -> view, as the stand-in last showed it
let actionTimer = 0;
let toastTimer = 0;
let attached = null;
let album = [];
let replyTo = null; // the message the next one answers, as Telegram's reply does
let stuckToEnd = true;

// ---- who this tab is ------------------------------------------------------------------

function whoAmI() {
  const query = new URLSearchParams(location.search);
  let id = Number.parseInt(query.get("user") || "", 10);
  if (!(id > 0)) id = 100000000 + Math.floor(Math.random() * 900000000);
  const asked = query.get("lang");
  const lang = ["en", "ru"].includes(asked) ? asked : navigator.language.startsWith("ru") ? "ru" : "en";
  const name = query.get("name") || NAMES[id % NAMES.length];
  const person = { id, lang, name };
  remember(person);
  return person;
}

function remember(person) {
  // The id lives in the address so a reload keeps the chat and a new tab can be a new person.
  const query = new URLSearchParams(location.search);
  query.set("user", String(person.id));
  query.set("lang", person.lang);
  history.replaceState(null, "", `${location.pathname}?${query}`);
}

// ---- talking to the stand-in -----------------------------------------------------------

async function control(path, body) {
  const isForm = body instanceof FormData;
  let response;
  try {
    response = await fetch(`/_sandbox/${path}`, {
      method: "POST",
      headers: isForm ? {} : { "Content-Type": "application/json" },
      body: isForm ? body : JSON.stringify(body),
    });
  } catch {
    notice("The stand-in does not answer. Is `kadr demo` still running?");
    return;
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    notice(answer.error || `The stand-in answered ${response.status}.`);
    return;
  }
  for (const delivery of answer.deliveries || []) {
    if (delivery.status === null) notice(`The bot's webhook is unreachable: ${delivery.body}`);
    else if (delivery.status >= 300) notice(`The bot's webhook answered ${delivery.status}.`);
  }
  return answer;
}

function person() {
  return { user_id: me.id, first_name: me.name, language_code: me.lang };
}

function sendText(text) {
  return control("send_message", { ...person(), ...replying(), text });
}

function sendFile(file, caption, asFile) {
  const form = new FormData();
  for (const [key, value] of Object.entries({ ...person(), ...replying() })) form.append(key, String(value));
  if (caption) form.append("caption", caption);
  const asPhoto = !asFile && file.type.startsWith("image/");
  form.append(asPhoto ? "photo" : "document", file, file.name || "photo.png");
  return control(asPhoto ? "send_photo" : "send_document", form);
}

// Several photos sent at once: an album, one update per photo sharing a media_group_id.
function sendAlbum(files, caption) {
  const form = new FormData();
  for (const [key, value] of Object.entries(person())) form.append(key, String(value));
  if (caption) form.append("caption", caption);
  files.forEach((file, index) => form.append(`photo${index}`, file, file.name || `photo${index}.png`));
  return control("send_album", form);
}

function replying() {
  return replyTo ? { reply_to_message_id: replyTo.message_id } : {};
}

function pressButton(messageId, data) {
  return control("press_button", { ...person(), message_id: messageId, callback_data: data });
}

function pay(messageId) {
  return control("pay", { ...person(), message_id: messageId });
}

// An invoice link (createInvoiceLink, subscriptions among them) is paid where it is shown.
function payLink(link) {
  return control("pay_link", { ...person(), link });
}

const INVOICE_LINK = /^https:\/\/t\.me\/\$/;

// ---- the live stream ---------------------------------------------------------------------

function listen() {
  const stream = new EventSource(`/_sandbox/chats/${me.id}/events`);
  stream.onopen = () => setStatus("bot");
  stream.onerror = () => setStatus("connecting…");
  stream.addEventListener("snapshot", (event) => {
    messages.clear();
    $("messages").replaceChildren();
    for (const view of JSON.parse(event.data)) messages.set(view.message_id, view);
    for (const view of messages.values()) redraw(view);
    stuckToEnd = true;
  });
  stream.addEventListener("message", (event) => {
    const view = JSON.parse(event.data);
    if (view.from_bot) setStatus("bot");
    else stuckToEnd = true; // what you just sent is always shown
    const before = messages.get(view.message_id);
    messages.set(view.message_id, view);
    if (before && rowKey(before) !== rowKey(view)) redraw(before);
    redraw(view);
  });
  stream.addEventListener("delete", (event) => {
    const view = messages.get(JSON.parse(event.data).message_id);
    if (!view) return;
    messages.delete(view.message_id);
    redraw(view);
  });
  stream.addEventListener("action", (event) => {
    setStatus(ACTIONS[JSON.parse(event.data).action] || "bot");
    clearTimeout(actionTimer);
    actionTimer = setTimeout(() => setStatus("bot"), ACTION_SHOWN_MS);
  });
  stream.addEventListener("toast", (event) => toast(JSON.parse(event.data)));
}

function setStatus(text) {
  $("status").textContent = text;
  $("status").classList.toggle("busy", text !== "bot");
}

// ---- drawing messages ----------------------------------------------------------------------

// An album is one row however many messages it has; any other message is a row of its own.
function rowKey(view) {
  return view.media_group_id ? `album-${view.media_group_id}` : `message-${view.message_id}`;
}

function redraw(view) {
  const key = rowKey(view);
  const members = [...messages.values()]
    .filter((other) => rowKey(other) === key)
    .sort((a, b) => a.message_id - b.message_id);
  const old = document.querySelector(`[data-row="${CSS.escape(key)}"]`);
  if (members.length === 0) {
    old?.remove();
    return;
  }
  const row = drawRow(members);
  row.dataset.row = key;
  row.dataset.first = String(members[0].message_id);
  if (old) old.replaceWith(row);
  else insertInOrder(row);
}

function insertInOrder(row) {
  const first = Number(row.dataset.first);
  const next = [...$("messages").children].find((other) => Number(other.dataset.first) > first);
  $("messages").insertBefore(row, next || null);
}

function drawRow(members) {
  const head = members[0];
  const row = el("div", `row ${head.from_bot ? "in" : "out"}`);
  if (head.successful_payment) {
    row.className = "row service";
    row.append(el("span", "service-text", `Paid ${stars(head.successful_payment.total_amount)}`));
    return row;
  }
  const bubble = el("div", "bubble");
  row.append(bubble);
  if (head.reply_to) bubble.append(drawQuote(head.reply_to));
  const media = members.filter(hasMedia);
  if (media.length > 0) bubble.append(drawMedia(media));
  const onlyPictures = media.length > 0 && media.every(isPicture) && !members.some(hasWords);
  bubble.classList.toggle("media-only", onlyPictures);
  const captioned = members.find((view) => view.caption);
  if (head.text) bubble.append(richText(head.text, head.entities));
  if (captioned) bubble.append(richText(captioned.caption, captioned.caption_entities));
  if (head.invoice) bubble.append(drawInvoice(head));
  bubble.append(drawMeta(members));
  const keyboard = members.find((view) => view.reply_markup?.inline_keyboard);
  if (keyboard) row.append(drawKeyboard(keyboard));
  row.append(drawReplyAction(head));
  bubble.addEventListener("dblclick", () => startReply(head));
  return row;
}

// A reply, as in Telegram: double-click a message or use its ↩ to answer it; the composer
// shows what you answer until you send or drop it.
function drawReplyAction(view) {
  const action = el("button", "reply-action", "↩");
  action.type = "button";
  action.title = "Reply";
  action.addEventListener("click", () => startReply(view));
  return action;
}

function drawQuote(quote) {
  const box = el("div", "quote");
  box.append(el("span", "quote-who", quote.from_bot ? "kadr" : me.name));
  box.append(el("span", "quote-text", quoteLine(quote)));
  box.addEventListener("click", () => {
    const target = document.querySelector(`[data-row="message-${quote.message_id}"]`);
    target?.scrollIntoView({ block: "center", behavior: "smooth" });
  });
  return box;
}

function quoteLine({ kind, text }) {
  const what = { photo: "Photo", video: "Video", animation: "GIF", audio: "Audio", document: "File" }[kind];
  return [what, text].filter(Boolean).join(" · ") || "Message";
}

function startReply(view) {
  replyTo = view;
  const kind = ["photo", "video", "animation", "audio", "document"].find((key) => view[key]);
  const quote = { kind, text: view.text || view.caption || "" };
  $("replying-to").textContent = `Reply to ${view.from_bot ? "kadr" : me.name}: ${quoteLine(quote)}`;
  $("replying").hidden = false;
  $("text").focus();
}

function stopReply() {
  replyTo = null;
  $("replying").hidden = true;
}

function hasMedia(view) {
  return Boolean(view.photo || view.video || view.animation || view.document || view.audio);
}

function isPicture(view) {
  return Boolean(view.photo || view.video || view.animation);
}

function hasWords(view) {
  return Boolean(view.text || view.caption);
}

function drawMedia(members) {
  const columns = members.every(isPicture) ? Math.min(members.length, 4) : 1; // files: a list
  const grid = el("div", `media count-${columns}`);
  for (const view of members) grid.append(drawFile(view));
  return grid;
}

function drawFile(view) {
  if (view.photo) {
    const img = el("img", "photo");
    img.alt = "photo";
    img.src = view.photo.url;
    if (view.photo.width && view.photo.height) img.style.aspectRatio = `${view.photo.width} / ${view.photo.height}`;
    img.addEventListener("click", () => openLightbox(view.photo.url));
    return img;
  }
  if (view.video || view.animation) {
    const file = view.video || view.animation;
    const video = el("video", "video");
    video.src = file.url;
    if (file.width && file.height) video.style.aspectRatio = `${file.width} / ${file.height}`;
    video.controls = true;
    video.playsInline = true;
    video.preload = "metadata";
    if (view.animation) Object.assign(video, { autoplay: true, loop: true, muted: true, controls: false });
    return video;
  }
  if (view.audio) {
    const audio = el("audio", "audio");
    audio.src = view.audio.url;
    audio.controls = true;
    return audio;
  }
  return drawDocument(view.document);
}

function drawDocument(file) {
  const link = el("a", "document");
  link.href = file.url;
  link.download = file.file_name || "file";
  link.append(el("span", "document-icon", extension(file)));
  const about = el("span", "document-about");
  about.append(el("span", "document-name", file.file_name || "file"));
  about.append(el("span", "document-size", size(file.file_size)));
  link.append(about);
  return link;
}

function extension(file) {
  const name = file.file_name || "";
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1, dot + 5).toUpperCase() : "FILE";
}

function size(bytes) {
  if (!bytes) return "";
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function stars(amount) {
  return `⭐ ${amount}`;
}

function drawInvoice(view) {
  const box = el("div", "invoice");
  box.append(el("div", "invoice-title", view.invoice.title));
  box.append(el("div", "invoice-description", view.invoice.description));
  const button = el("button", "invoice-pay", `Pay ${stars(view.invoice.total_amount)}`);
  button.type = "button";
  button.addEventListener("click", () => pay(view.message_id));
  box.append(button);
  return box;
}

function drawMeta(members) {
  const meta = el("span", "meta");
  const edited = members.some((view) => view.edited);
  const time = new Date(members[0].date * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
  meta.textContent = edited ? `edited ${time}` : time;
  return meta;
}

function drawKeyboard(view) {
  const keyboard = el("div", "keyboard");
  for (const buttons of view.reply_markup.inline_keyboard) {
    const row = el("div", "keyboard-row");
    for (const button of buttons) row.append(drawButton(view, button));
    keyboard.append(row);
  }
  return keyboard;
}

function drawButton(view, button) {
  if (INVOICE_LINK.test(button.url || "")) {
    const key = el("button", "key", button.text);
    key.type = "button";
    key.addEventListener("click", () => payLink(button.url));
    return key;
  }
  const url = safeUrl(button.url);
  if (url) {
    const link = el("a", "key", button.text);
    Object.assign(link, { href: url, target: "_blank", rel: "noopener noreferrer" });
    return link;
  }
  const key = el("button", "key", button.text);
  key.type = "button";
  if (button.callback_data !== undefined) {
    key.addEventListener("click", () => pressButton(view.message_id, button.callback_data));
  } else if (button.web_app) {
    key.addEventListener("click", () => openWebApp(button.web_app.url));
  } else if (button.pay) {
    key.addEventListener("click", () => pay(view.message_id));
  } else {
    key.disabled = true;
    key.title = "This kind of button does nothing in the stand-in";
  }
  return key;
}

// ---- formatted text ---------------------------------------------------------------------

function richText(text, entities) {
  const block = el("div", "text");
  renderRange(block, text, entities || [], 0, text.length, true);
  return block;
}

// Entities come with UTF-16 offsets, which is what JavaScript strings count in. Nested
// entities become nested elements; one that crosses its parent's end is cut there.
function renderRange(parent, text, entities, start, end, linkify) {
  const inside = entities
    .filter((entity) => entity.offset >= start && entity.offset < end)
    .sort((a, b) => a.offset - b.offset || b.length - a.length);
  let position = start;
  for (const entity of inside) {
    if (entity.offset < position) continue; // drawn inside an earlier sibling
    plain(parent, text.slice(position, entity.offset), linkify);
    const stop = Math.min(entity.offset + entity.length, end);
    const node = entityElement(entity, text.slice(entity.offset, stop));
    const nested = inside.filter((other) => other !== entity && other.offset >= entity.offset && other.offset < stop);
    const target = node.tagName === "PRE" ? node.firstChild : node;
    const linkInside = linkify && !["A", "CODE", "PRE"].includes(node.tagName);
    renderRange(target, text, nested, entity.offset, stop, linkInside);
    parent.append(node);
    position = stop;
  }
  plain(parent, text.slice(position, end), linkify);
}

function entityElement(entity, content) {
  switch (entity.type) {
    case "pre": {
      const pre = el("pre", "pre");
      const code = el("code");
      if (entity.language) code.dataset.language = entity.language;
      pre.append(code);
      return pre;
    }
    case "text_link":
    case "url":
    case "email":
      return link(entity.type === "email" ? `mailto:${content}` : entity.url || withScheme(content));
    case "bot_command":
      return command(content);
    default: {
      const node = el(ENTITY_TAGS[entity.type] || "span", entity.type);
      if (entity.type === "spoiler") node.addEventListener("click", () => node.classList.add("revealed"));
      return node;
    }
  }
}

function plain(parent, text, linkify) {
  if (!text) return;
  if (!linkify) {
    parent.append(text);
    return;
  }
  let position = 0;
  for (const match of text.matchAll(AUTO_LINK)) {
    const start = match.index + match[1].length;
    parent.append(text.slice(position, start));
    const found = match[2];
    const node = found.startsWith("/") ? command(found) : link(found);
    node.append(found);
    parent.append(node);
    position = start + found.length;
  }
  parent.append(text.slice(position));
}

function link(url) {
  const safe = safeUrl(url);
  if (!safe) return el("span", "link");
  const node = el("a", "link");
  Object.assign(node, { href: safe, target: "_blank", rel: "noopener noreferrer" });
  return node;
}

function command(text) {
  const node = el("a", "command");
  node.href = "#";
  node.addEventListener("click", (event) => {
    event.preventDefault();
    sendText(text);
  });
  return node;
}

function withScheme(url) {
  return /^[a-z][a-z0-9+.-]*:/i.test(url) ? url : `http://${url}`;
}

function safeUrl(url) {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return ["http:", "https:", "mailto:", "tg:"].includes(parsed.protocol) ? parsed.href : null;
  } catch {
    return null;
  }
}

// ---- little things -----------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function notice(text) {
  const row = el("div", "row service");
  row.append(el("span", "service-text", text));
  row.dataset.first = String(Math.max(0, ...messages.keys()) + 0.5); // after what is shown now
  $("messages").append(row);
  stuckToEnd = true;
}

function toast({ text, show_alert: alert }) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  box.classList.toggle("alert", alert);
  clearTimeout(toastTimer);
  if (!alert) toastTimer = setTimeout(() => (box.hidden = true), TOAST_MS);
}

// The chat sticks to its end while you are there, however it grows (a new message, a picture
// that finished loading); scrolled up to read, it stays where you are.
function stickToEnd() {
  const chat = $("chat");
  chat.addEventListener("scroll", () => {
    stuckToEnd = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
  });
  new ResizeObserver(() => {
    if (stuckToEnd) chat.scrollTop = chat.scrollHeight;
  }).observe($("messages"));
}

function openLightbox(url) {
  const box = $("lightbox");
  box.querySelector("img").src = url;
  box.hidden = false;
}

// ---- Mini Apps ------------------------------------------------------------------------------
// A Mini App opens in a frame over the chat, as in Telegram's web clients, with the launch
// parameters (initData signed by the stand-in with the bot's token) in its URL. The app talks
// to its host with Telegram's web events (postMessage of {eventType, eventData}); the stand-in
// plays the share dialog of WebApp.shareMessage with one chat to pick: "Friends".

const FRIENDS_CHAT = -1001000000001;
let webAppFrame = null;
let sharing = null;

async function openWebApp(url) {
  const answer = await control("web_app", { ...person(), ...(url ? { url } : {}) });
  if (!answer?.url) return;
  webAppFrame = $("webapp-frame");
  webAppFrame.src = answer.url;
  $("webapp").hidden = false;
}

function closeWebApp() {
  $("webapp").hidden = true;
  $("share-dialog").hidden = true;
  $("webapp-frame").src = "about:blank";
  webAppFrame = null;
}

function toWebApp(eventType, eventData = {}) {
  webAppFrame?.contentWindow?.postMessage(JSON.stringify({ eventType, eventData }), "*");
}

function onWebAppEvent(message) {
  if (!webAppFrame || message.source !== webAppFrame.contentWindow) return;
  let event;
  try {
    event = JSON.parse(message.data);
  } catch {
    return;
  }
  if (event.eventType === "web_app_close") closeWebApp();
  if (event.eventType === "web_app_send_prepared_message") {
    sharing = event.eventData?.id;
    $("share-dialog").hidden = false;
  }
}

async function shareTo(chatId) {
  $("share-dialog").hidden = true;
  const prepared = sharing;
  sharing = null;
  if (!prepared) return;
  const sent = await control("share", { ...person(), prepared_id: prepared, chat_id: chatId });
  toWebApp(sent ? "prepared_message_sent" : "prepared_message_failed");
  if (sent) toast({ text: "Shared to Friends", show_alert: false });
}

function cancelShare() {
  $("share-dialog").hidden = true;
  sharing = null;
  toWebApp("prepared_message_failed", { error: "USER_DECLINED" });
}

async function showMenuButton() {
  const response = await fetch(`/_sandbox/chats/${me.id}/menu_button`);
  const button = response.ok ? await response.json() : {};
  if (button.type !== "web_app") return;
  $("webapp-menu").textContent = button.text;
  $("webapp-menu").hidden = false;
  $("webapp-menu").addEventListener("click", () => openWebApp(button.web_app.url));
}

// ---- the composer ---------------------------------------------------------------------------

function attach(file) {
  attached = file;
  const isImage = file.type.startsWith("image/");
  $("attachment").hidden = false;
  $("attachment-name").textContent = `${file.name || "pasted image"} · ${size(file.size)}`;
  $("attachment-preview").hidden = !isImage;
  if (isImage) $("attachment-preview").src = URL.createObjectURL(file);
  $("as-file").checked = !isImage;
  $("as-file").disabled = !isImage;
  $("text").placeholder = "Caption";
  $("text").focus();
}

// Telegram sends 2 to 10 photos as an album; more files, or any that is not an image,
// attach the first alone.
function attachFiles(files) {
  const albumOf = files.length > 1 && files.length <= 10 && files.every((f) => f.type.startsWith("image/"));
  if (!albumOf) {
    if (files[0]) attach(files[0]);
    return;
  }
  attach(files[0]);
  album = files;
  const total = files.reduce((sum, file) => sum + file.size, 0);
  $("attachment-name").textContent = `${files.length} photos, an album · ${size(total)}`;
  $("as-file").checked = false;
  $("as-file").disabled = true;
}

function detach() {
  if ($("attachment-preview").src) URL.revokeObjectURL($("attachment-preview").src);
  attached = null;
  album = [];
  $("attachment").hidden = true;
  $("attachment-preview").removeAttribute("src");
  $("file").value = "";
  $("text").placeholder = "Message";
}

function submit() {
  const text = $("text").value.trim();
  if (album.length > 1) sendAlbum(album, text);
  else if (attached) sendFile(attached, text, $("as-file").checked);
  else if (text) sendText(text);
  else return;
  $("text").value = "";
  detach();
  stopReply();
  hideCommands();
  fitText();
}

function fitText() {
  const box = $("text");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 160)}px`;
}

async function showCommands(filter) {
  const response = await fetch(`/_sandbox/chats/${me.id}/commands?language_code=${me.lang}`);
  const list = response.ok ? await response.json() : [];
  const shown = list.filter((item) => `/${item.command}`.startsWith(filter));
  const menu = $("commands");
  menu.replaceChildren(
    ...shown.map((item) => {
      const option = el("button", "command-option");
      option.type = "button";
      option.append(el("span", "command-name", `/${item.command}`), el("span", "command-about", item.description));
      option.addEventListener("click", () => {
        hideCommands();
        if ($("text").value.startsWith("/")) $("text").value = "";
        sendText(`/${item.command}`);
      });
      return option;
    }),
  );
  menu.hidden = shown.length === 0;
}

function hideCommands() {
  $("commands").hidden = true;
}

function setLanguage(lang) {
  me.lang = lang;
  remember(me);
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.classList.toggle("active", button.dataset.lang === lang);
  }
  $("new-user").href = `/?lang=${lang}`;
}

function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem("kadr-theme", theme);
}

function wire() {
  $("who").textContent = `${me.name} · id ${me.id}`;
  setLanguage(me.lang);
  const systemTheme = matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  document.documentElement.dataset.theme = localStorage.getItem("kadr-theme") || systemTheme;
  $("theme").addEventListener("click", () => {
    setTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark");
  });
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => setLanguage(button.dataset.lang));
  }
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  $("text").addEventListener("input", () => {
    fitText();
    const value = $("text").value;
    if (/^\/\w*$/.test(value)) showCommands(value);
    else hideCommands();
  });
  $("menu").addEventListener("click", () => ($("commands").hidden ? showCommands("/") : hideCommands()));
  $("attach").addEventListener("click", () => $("file").click());
  $("file").addEventListener("change", () => attachFiles([...$("file").files]));
  $("attachment-drop").addEventListener("click", detach);
  $("replying-drop").addEventListener("click", stopReply);
  $("lightbox").addEventListener("click", () => ($("lightbox").hidden = true));
  $("toast").addEventListener("click", () => ($("toast").hidden = true));
  document.addEventListener("paste", (event) => {
    const file = [...event.clipboardData.files].find((item) => item.type.startsWith("image/"));
    if (file) {
      event.preventDefault();
      attach(file);
    }
  });
  $("chat").addEventListener("dragover", (event) => event.preventDefault());
  $("chat").addEventListener("drop", (event) => {
    event.preventDefault();
    attachFiles([...event.dataTransfer.files]);
  });
  $("webapp-close").addEventListener("click", closeWebApp);
  $("share-friends").addEventListener("click", () => shareTo(FRIENDS_CHAT));
  $("share-cancel").addEventListener("click", cancelShare);
  window.addEventListener("message", onWebAppEvent);
  showMenuButton();
  $("text").focus();
}

wire();
stickToEnd();
listen();
