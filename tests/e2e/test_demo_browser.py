"""The demo as a person uses it: headless Chromium on the Telegram stand-in's chat page, talking
to the real api and worker processes. Set KADR_SCREENSHOT=docs/demo.png to save what it saw
(that is how the README's picture is made)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import ConsoleMessage, Page, ViewportSize, expect, sync_playwright

from bot.i18n import i18n
from sandbox.control import FalSandbox, TelegramSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.stack import Stack
from sandbox.telegram.formatting import parse_html
from tests.conftest import deployment, fast_catalog

CHROMIUM = Path("/usr/bin/chromium")
# The machine has no network: nothing may phone home, and nothing is downloaded.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USER = 7001
BUYER = 7002
ALBUM_USER = 7004
COLLECTOR = 7003
#: The chat the stand-in's share dialog offers (sandbox/telegram/static/chat.js).
FRIENDS_CHAT = -1001000000001
REPLIER = 7005
NAME = "Anna"
PROMPT = "a lighthouse at dawn"
ARRIVES = 60_000  # ms the page may take to show the bot's answer on a busy 2-core machine
VIEWPORT: ViewportSize = {"width": 900, "height": 1080}
#: A picture from the bot that the browser fetched and decoded, not just an <img> tag.
LOADED_PICTURE = """() => [...document.querySelectorAll(".row.in img.photo")]
    .some((image) => image.complete && image.naturalWidth > 0)"""

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("CI") != "true",
    reason=f"no {CHROMIUM}: `apt-get install chromium` (CI installs it and runs this test)",
)


@pytest.fixture
def page(stack: Stack, telegram: TelegramSandbox) -> Iterator[Page]:
    yield from _browser_page()


def _browser_page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT, color_scheme="light")
        yield page
        browser.close()


@pytest.fixture(scope="module")
def paying_stack(
    tmp_path_factory: pytest.TempPathFactory, own_database_url: str, own_redis: PrivateRedis
) -> Iterator[Stack]:
    """A deployment without a daily allowance: a picture there is paid for."""
    workdir = tmp_path_factory.mktemp("paying")
    env = {
        "FREE_CREDITS_PER_DAY": "0",
        "KADR_CATALOG": str(fast_catalog(workdir / "catalog.toml")),
    }
    with deployment(workdir, own_database_url, own_redis.url, env, "--no-fetch-urls") as stack:
        yield stack


@pytest.fixture
def paying_page(paying_stack: Stack) -> Iterator[Page]:
    yield from _browser_page()


def send(page: Page, text: str) -> None:
    page.locator("#text").fill(text)
    page.keyboard.press("Enter")


def test_start_and_a_prompt_give_the_greeting_and_a_picture(stack: Stack, page: Page) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: _note_error(problems, message))
    page.goto(f"{stack.telegram_url}/?user={USER}&lang=en&name={NAME}")
    expect(page.locator("#who")).to_contain_text(str(USER))

    send(page, "/start")
    greeting, _ = parse_html(i18n.gettext("start", locale="en").format(name=NAME))
    expect(page.locator(".row.in .text").first).to_have_text(greeting, timeout=ARRIVES)

    send(page, PROMPT)
    expect(page.locator(".row.out .text").last).to_have_text(PROMPT, timeout=ARRIVES)
    expect(page.locator(".row.in img.photo").first).to_be_visible(timeout=ARRIVES)
    page.wait_for_function(LOADED_PICTURE, timeout=ARRIVES)

    if target := os.environ.get("KADR_SCREENSHOT"):
        save_screenshot(page, Path(target))
    assert problems == []


def test_a_reply_to_a_picture_edits_it_and_undo_brings_the_first_back(
    stack: Stack, page: Page
) -> None:
    """↩ on the bot's picture, words, Enter: the edit comes as v2; ↩️ Undo under it shows the
    first picture again."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: _note_error(problems, message))
    page.goto(f"{stack.telegram_url}/?user={REPLIER}&lang=en&name={NAME}")
    pictures = page.locator(".row.in", has=page.locator("img.photo"))

    send(page, PROMPT)
    expect(pictures).to_have_count(1, timeout=ARRIVES)
    pictures.first.hover()
    pictures.first.locator(".reply-action").click()
    expect(page.locator("#replying")).to_contain_text("Reply to kadr: Photo")
    send(page, "add fog")
    expect(page.locator("#replying")).to_be_hidden()
    expect(page.locator(".row.out .quote").last).to_contain_text(PROMPT)

    edited = pictures.filter(has_text="v2")
    expect(edited).to_have_count(1, timeout=ARRIVES)
    expect(edited).to_contain_text("add fog")
    edited.locator(".key", has_text=i18n.gettext("button_undo", locale="en")).click()
    expect(pictures).to_have_count(3, timeout=ARRIVES)
    expect(pictures.last).to_contain_text(PROMPT)
    expect(pictures.last).not_to_contain_text("v2")
    assert problems == []


def test_a_purchase_with_pretend_stars_pays_for_a_picture(
    paying_stack: Stack, paying_page: Page
) -> None:
    """The balance, the 💳 button under "not enough credits", a pack, the stand-in's invoice
    paid with pretend Stars, then a picture paid with those credits."""
    page = paying_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: _note_error(problems, message))
    page.goto(f"{paying_stack.telegram_url}/?user={BUYER}&lang=en&name={NAME}")
    expect(page.locator("#who")).to_contain_text(str(BUYER))
    answers = page.locator(".row.in .text")

    send(page, "/balance")
    expect(answers.last).to_contain_text("💰 0 credits", timeout=ARRIVES)

    send(page, PROMPT)
    refusal = page.locator(".row.in", has_text="Not enough credits")
    expect(refusal).to_have_count(1, timeout=ARRIVES)
    refusal.locator(".key", has_text=i18n.gettext("button_buy", locale="en")).click()
    offer = page.locator(".row.in", has_text="Choose a pack")
    expect(offer).to_have_count(1, timeout=ARRIVES)
    offer.locator(".key").first.click()
    pay = page.locator(".invoice-pay")
    expect(pay).to_have_count(1, timeout=ARRIVES)
    pay.click()
    expect(page.locator(".row.service")).to_contain_text("Paid ⭐", timeout=ARRIVES)
    expect(answers.last).to_have_text("✅ 50 credits added. Balance: 50.", timeout=ARRIVES)
    assert page.locator(".row.in img.photo").count() == 0

    send(page, PROMPT)
    expect(page.locator(".row.in img.photo").first).to_be_visible(timeout=ARRIVES)
    page.wait_for_function(LOADED_PICTURE, timeout=ARRIVES)
    send(page, "/balance")
    expect(answers.last).to_contain_text("💰 49 credits", timeout=ARRIVES)
    assert problems == []


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80 + width % 100, 40)).save(out, "PNG")
    return out.getvalue()


def test_three_photos_chosen_at_once_are_edited_as_one_album(
    stack: Stack, page: Page, fal: FalSandbox
) -> None:
    """Several photos picked at once in the file dialog go as an album, its caption the
    edit: one picture comes back, made from all three."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: _note_error(problems, message))
    page.goto(f"{stack.telegram_url}/?user={ALBUM_USER}&lang=en&name={NAME}")
    expect(page.locator("#who")).to_contain_text(str(ALBUM_USER))
    files = [
        {"name": f"friend{i}.png", "mimeType": "image/png", "buffer": png(300 + 20 * i, 240)}
        for i in range(3)
    ]
    page.locator("#file").set_input_files(files)  # type: ignore[arg-type]
    expect(page.locator("#attachment-name")).to_contain_text("3 photos", timeout=ARRIVES)
    send(page, "the three of us at a picnic")
    expect(page.locator(".row.out img")).to_have_count(3, timeout=ARRIVES)  # one album row
    expect(page.locator(".row.out")).to_have_count(1)
    expect(page.locator(".row.in img.photo").first).to_be_visible(timeout=ARRIVES)
    page.wait_for_function(LOADED_PICTURE, timeout=ARRIVES)
    [submit] = [
        r
        for r in fal.requests("submit")
        if r["body"].get("prompt") == "the three of us at a picnic"
    ]
    assert len(set(submit["body"]["image_urls"])) == 3
    assert problems == []


def test_the_gallery_opens_from_the_menu_button_shows_a_result_full_screen_and_shares_it(
    stack: Stack, page: Page, telegram: TelegramSandbox
) -> None:
    """The chat's menu button opens the Mini App with initData the stand-in signed; the
    gallery lists the picture just made, shows it full screen, Share sends Telegram's copy
    of it to a chat picked in the share dialog, "via" the bot, and Make again makes another."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: _note_error(problems, message))
    page.goto(f"{stack.telegram_url}/?user={COLLECTOR}&lang=en&name={NAME}")
    send(page, PROMPT)
    expect(page.locator(".row.in img.photo").first).to_be_visible(timeout=ARRIVES)
    # The status message goes once the job is recorded as delivered, with its file ids.
    assert telegram.wait_for("deleteMessage", chat_id=COLLECTOR, timeout=ARRIVES / 1000)

    menu = page.locator("#webapp-menu")
    expect(menu).to_be_visible()
    menu.click()
    gallery = page.frame_locator("#webapp-frame")
    expect(gallery.locator("#title")).to_have_text("Your gallery", timeout=ARRIVES)
    tiles = gallery.locator(".tile")
    expect(tiles).to_have_count(1, timeout=ARRIVES)
    tiles.first.click()

    viewer = gallery.locator("#viewer")
    expect(viewer).to_be_visible()
    expect(gallery.locator("#prompt")).to_have_text(PROMPT)
    picture = gallery.locator("#stage img")
    expect(picture).to_be_visible()
    picture.evaluate("(image) => image.decode()")
    box = picture.bounding_box()
    assert box is not None and box["width"] > VIEWPORT["width"] / 2

    gallery.locator("#share").click()
    dialog = page.locator("#share-dialog")
    expect(dialog).to_be_visible(timeout=ARRIVES)
    dialog.locator("#share-friends").click()
    expect(gallery.locator("#toast")).to_have_text("Shared.", timeout=ARRIVES)
    [shared] = telegram.messages(FRIENDS_CHAT)
    assert shared["via_bot"]["username"] == "kadr_bot"
    assert shared["caption"] == PROMPT
    assert shared.get("photo")

    # Make again: a new job by the normal path, from the api process; its picture comes.
    gallery.locator("#regenerate").click()
    expect(gallery.locator("#toast")).to_have_text(
        "Started: the result comes to the chat.", timeout=ARRIVES
    )
    page.locator("#webapp-close").click()
    expect(page.locator(".row.in img.photo")).to_have_count(2, timeout=ARRIVES)
    # Offline, Telegram's script cannot load: the page goes on with the URL's launch data.
    assert [p for p in problems if "telegram.org" not in p and "ERR_NAME" not in p] == []


def save_screenshot(page: Page, target: Path) -> None:
    """Re-encoded at full compression: Chromium's fast PNG is a third bigger, too big for git."""
    Image.open(io.BytesIO(page.screenshot())).save(target, optimize=True)


def _note_error(problems: list[str], message: ConsoleMessage) -> None:
    if message.type == "error":
        problems.append(message.text)
