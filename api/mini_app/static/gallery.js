"use strict";
// The gallery Mini App: the user's results from /app/api, newest first, paged; a full-screen
// view with Download, Make again and Share. Every call carries Telegram's initData, which the
// server checks; without Telegram's script (a client that passes the launch parameters in
// the URL, as the web clients do) the page reads them from the URL and talks to its host
// page through Telegram's documented web events.

const TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js";
const SCRIPT_WAIT_MS = 3000;
const TEXTS = {
  en: {
    title: "Your gallery",
    empty: "Nothing here yet: write a prompt in the chat and your results will show here.",
    more: "More",
    download: "Download",
    regenerate: "Make again",
    share: "Share",
    close: "Close",
    started: "Started: the result comes to the chat.",
    refused: "Not started: the chat says why.",
    shared: "Shared.",
    failed: "Something went wrong. Try again.",
    expired: "This gallery session has expired: open the gallery again.",
    links: "This result was sent as links and cannot be shared from here.",
  },
  ru: {
    title: "Ваша галерея",
    empty: "Здесь пока пусто: напишите описание в чате, и результаты появятся здесь.",
    more: "Ещё",
    download: "Скачать",
    regenerate: "Сделать снова",
    share: "Поделиться",
    close: "Закрыть",
    started: "Запущено: результат придёт в чат.",
    refused: "Не запущено: причина в чате.",
    shared: "Отправлено.",
    failed: "Что-то пошло не так. Попробуйте ещё раз.",
    expired: "Сеанс галереи истёк: откройте галерею снова.",
    links: "Этот результат отправлен ссылками, им нельзя поделиться отсюда.",
  },
};

let webApp = null;
let initData = "";
let texts = TEXTS.en;
let next = null;
let current = null;

function loadTelegram() {
  return new Promise((resolve) => {
    const script = document.createElement("script");
    const done = () => resolve(window.Telegram?.WebApp ?? null);
    script.src = TELEGRAM_SCRIPT;
    script.onload = done;
    script.onerror = done;
    setTimeout(done, SCRIPT_WAIT_MS);
    document.head.append(script);
  });
}

function launchData() {
  const params = new URLSearchParams(location.hash.slice(1));
  return params.get("tgWebAppData") || "";
}

function languageOf(data) {
  try {
    const user = JSON.parse(new URLSearchParams(data).get("user") || "{}");
    return (user.language_code || "").startsWith("ru") ? "ru" : "en";
  } catch {
    return "en";
  }
}

async function api(path, method = "GET") {
  const response = await fetch(`api/${path}`, {
    method,
    headers: { Authorization: `tma ${initData}` },
  });
  if (response.status === 401) throw new Error(texts.expired);
  if (response.status === 409) throw new Error(texts.links);
  if (!response.ok) throw new Error(texts.failed);
  return response.json();
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function media(item, index, controls) {
  const url = item.media[index];
  if (item.kind === "video") {
    const video = el("video");
    Object.assign(video, { src: url, muted: !controls, controls, playsInline: true });
    video.preload = "metadata";
    return video;
  }
  const image = el("img");
  Object.assign(image, { src: url, alt: item.prompt, loading: "lazy" });
  return image;
}

function tile(item) {
  const button = el("button", "tile");
  button.type = "button";
  button.dataset.id = item.id;
  const preview = media(item, 0, false);
  // fal keeps a result's file about a week: past that the tile says so instead of a hole.
  preview.addEventListener("error", () => button.classList.add("gone"));
  button.append(preview);
  if (item.media.length > 1) button.append(el("span", "badge", `×${item.media.length}`));
  button.addEventListener("click", () => openViewer(item));
  return button;
}

async function loadPage() {
  const more = document.getElementById("more");
  more.hidden = true;
  try {
    const page = await api(`results${next ? `?before=${encodeURIComponent(next)}` : ""}`);
    const grid = document.getElementById("grid");
    for (const item of page.items) {
      if (item.media.length) grid.append(tile(item));
    }
    next = page.next;
    more.hidden = !next;
    if (!grid.children.length) notice(texts.empty);
  } catch (error) {
    notice(error.message);
  }
}

function notice(text) {
  const node = document.getElementById("notice");
  node.textContent = text;
  node.hidden = false;
}

function toast(text) {
  const node = document.getElementById("toast");
  node.textContent = text;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (node.hidden = true), 3000);
}

function openViewer(item) {
  current = item;
  const stage = document.getElementById("stage");
  stage.replaceChildren(media(item, 0, true));
  document.getElementById("prompt").textContent = item.prompt;
  const download = document.getElementById("download");
  download.href = item.media[0];
  document.getElementById("share").hidden = !item.shareable;
  document.getElementById("viewer").hidden = false;
  webApp?.BackButton?.show();
}

function closeViewer() {
  current = null;
  document.getElementById("viewer").hidden = true;
  document.getElementById("stage").replaceChildren();
  webApp?.BackButton?.hide();
}

function download(event) {
  if (!current || !webApp?.isVersionAtLeast?.("8.0")) return;
  event.preventDefault();
  const url = current.media[0];
  webApp.downloadFile({ url, file_name: url.split("/").pop() || "kadr" });
}

async function regenerate() {
  if (!current) return;
  try {
    const answer = await api(`results/${current.id}/regenerate`, "POST");
    toast(answer.started ? texts.started : texts.refused);
  } catch (error) {
    toast(error.message);
  }
}

async function share() {
  if (!current) return;
  let prepared;
  try {
    prepared = await api(`results/${current.id}/share`, "POST");
  } catch (error) {
    toast(error.message);
    return;
  }
  const id = prepared.prepared_id;
  if (webApp?.shareMessage) {
    webApp.shareMessage(id, (sent) => sent && toast(texts.shared));
    return;
  }
  // Telegram's web event for WebApp.shareMessage; the client answers with
  // prepared_message_sent or prepared_message_failed.
  const event = { eventType: "web_app_send_prepared_message", eventData: { id } };
  window.parent.postMessage(JSON.stringify(event), "*");
}

function onHostEvent(message) {
  if (message.source !== window.parent || typeof message.data !== "string") return;
  let event;
  try {
    event = JSON.parse(message.data);
  } catch {
    return;
  }
  if (event.eventType === "prepared_message_sent") toast(texts.shared);
  if (event.eventType === "prepared_message_failed") toast(texts.failed);
}

function label(id, key) {
  document.getElementById(id).textContent = texts[key];
}

async function start() {
  webApp = await loadTelegram();
  initData = webApp?.initData || launchData();
  texts = TEXTS[languageOf(initData)];
  document.documentElement.lang = languageOf(initData);
  label("title", "title");
  label("more", "more");
  label("download", "download");
  label("regenerate", "regenerate");
  label("share", "share");
  label("close", "close");
  webApp?.ready();
  webApp?.expand();
  webApp?.BackButton?.onClick(closeViewer);
  window.addEventListener("message", onHostEvent);
  document.getElementById("more").addEventListener("click", loadPage);
  document.getElementById("close").addEventListener("click", closeViewer);
  document.getElementById("download").addEventListener("click", download);
  document.getElementById("regenerate").addEventListener("click", regenerate);
  document.getElementById("share").addEventListener("click", share);
  if (!initData) {
    notice(texts.expired);
    return;
  }
  await loadPage();
}

start();
