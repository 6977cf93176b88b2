"""The prompt helper and styles in the conversation: /settings turns the helper on (and the
job is priced with it), ✨ Improve and ↩️ My words make the job again with and without it,
🔁 makes it again from the prompt it settled on, the caption shows the prompt used, and
/styles and 🎨 make jobs in a catalog style."""

from __future__ import annotations

from sqlalchemy import update

from bot.job_messages import Action, JobButton, caption, result_keyboard, status_keyboard
from bot.routers.styles import StyleButton
from core.domain.catalog import catalog
from core.domain.credits import balance_of
from core.domain.models import Job, JobStatus
from tests.bot.conftest import Chat


def _buttons(markup: object) -> dict[str, str]:
    """Button text → its callback data."""
    rows = markup.inline_keyboard  # type: ignore[attr-defined]
    return {button.text: button.callback_data for row in rows for button in row}


async def _helper_on(chat: Chat) -> None:
    chat.session.requests.clear()
    await chat.say("/settings")
    [menu] = chat.calls("sendMessage")
    assert "Prompt helper: off" in menu.text
    await chat.feed(chat.tap(_buttons(menu.reply_markup)["✨ Prompt helper: off"]))
    [shown] = chat.calls("editMessageText")
    assert "Prompt helper: on" in shown.text
    assert "✨ Prompt helper: on" in _buttons(shown.reply_markup)


async def _delivered(chat: Chat, job: Job, **options: object) -> Job:
    """The job as delivered, with what the worker settled on its way."""
    async with chat.sessions.begin() as session:
        await session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(status=JobStatus.DELIVERED, options={**job.options, **options})
        )
    [found] = [j for j in await chat.jobs() if j.id == job.id]
    return found


async def _balance(chat: Chat) -> int:
    async with chat.sessions() as session:
        return (await balance_of(session, chat.user_id)).total


async def test_the_settings_toggle_turns_the_helper_on_and_its_price_is_added(
    chat: Chat,
) -> None:
    await chat.say("a cat")
    [plain] = await chat.jobs()
    assert "improve" not in plain.options
    spent_plain = 10 - await _balance(chat)

    await _helper_on(chat)
    await chat.say("кот в шляпе")
    [improved] = [job for job in await chat.jobs() if job.id != plain.id]
    assert improved.options["improve"] is True
    spent = 10 - await _balance(chat) - spent_plain
    assert spent == spent_plain + catalog().prompt_helper.price
    # The helper is already on: its status message offers no ✨ Improve.
    assert "✨ Improve" not in _buttons(status_keyboard(improved))


async def test_a_long_english_prompt_goes_as_written_and_costs_no_more(chat: Chat) -> None:
    await _helper_on(chat)
    await chat.say(" ".join(["a detailed english prompt about a cat"] * 3))
    [job] = await chat.jobs()
    assert "improve" not in job.options


async def test_improve_on_a_waiting_status_message_replaces_the_job_with_the_helpers(
    chat: Chat,
) -> None:
    await chat.say("кот")
    [status] = [call for call in chat.calls("sendMessage") if call.reply_markup]
    buttons = _buttons(status.reply_markup)
    assert set(buttons) == {"✖ Cancel", "✨ Improve"}
    balance = await _balance(chat)

    await chat.feed(chat.tap(buttons["✨ Improve"]))
    first, again = sorted(await chat.jobs(), key=lambda job: job.created_at)
    assert (again.prompt, again.options.get("improve")) == ("кот", True)
    # The first had not gone to fal: it is cancelled and refunded, its status removed.
    assert first.status == JobStatus.CANCELLED
    assert [call.message_id for call in chat.calls("deleteMessage")] == [first.status_message_id]
    # Its price came back and went to the new job, with the helper's on top.
    assert await _balance(chat) == balance - catalog().prompt_helper.price


async def test_improve_on_a_job_fal_has_leaves_it_and_makes_another(chat: Chat) -> None:
    await chat.say("кот")
    [first] = await chat.jobs()
    async with chat.sessions.begin() as session:
        await session.execute(
            update(Job).where(Job.id == first.id).values(status=JobStatus.SUBMITTED)
        )
    await chat.feed(chat.tap(JobButton(action=Action.IMPROVE, job_id=first.id).pack()))
    jobs = {job.id: job for job in await chat.jobs()}
    assert jobs.pop(first.id).status == JobStatus.SUBMITTED
    [again] = jobs.values()
    assert again.options.get("improve") is True
    assert chat.calls("deleteMessage") == []


REWRITTEN = "A detailed, high quality picture of: кот в шляпе"


async def _improved_result(chat: Chat) -> Job:
    """A picture made from "кот в шляпе" with the helper on, delivered."""
    await _helper_on(chat)
    await chat.say("кот в шляпе")
    [job] = await chat.jobs()
    return await _delivered(chat, job, improved_prompt=REWRITTEN, prompt_sent=REWRITTEN)


async def test_my_words_makes_it_again_from_the_original_prompt(chat: Chat) -> None:
    job = await _improved_result(chat)
    assert caption(job).startswith(f"✨ {REWRITTEN}")
    buttons = _buttons(result_keyboard(job, "images"))
    assert buttons["↩️ My words"] == JobButton(action=Action.MY_WORDS, job_id=job.id).pack()

    await chat.feed(chat.tap(buttons["↩️ My words"]))
    [again] = [j for j in await chat.jobs() if j.id != job.id]
    assert again.prompt == "кот в шляпе"
    assert not {"improve", "improved_prompt", "prompt_sent"} & set(again.options)
    assert again.model == job.model


async def test_regenerate_keeps_the_helpers_prompt_and_costs_the_picture_alone(chat: Chat) -> None:
    job = await _improved_result(chat)
    before = await _balance(chat)

    await chat.feed(chat.tap(JobButton(action=Action.REGENERATE, job_id=job.id).pack()))
    [again] = [j for j in await chat.jobs() if j.id != job.id]
    assert again.prompt == "кот в шляпе"
    assert again.options["prompt_sent"] == again.options["improved_prompt"] == REWRITTEN
    assert "improve" not in again.options
    model = catalog().find(again.model)
    assert model is not None
    assert before - await _balance(chat) == model.cost(again.options)
    assert "✨ Improve" not in _buttons(status_keyboard(again))
    assert caption(again).startswith(f"✨ {REWRITTEN}")


async def test_a_style_picked_in_styles_is_used_by_the_next_prompt_and_the_last_one(
    chat: Chat,
) -> None:
    await chat.say("a lighthouse")
    [last] = await chat.jobs()
    chat.session.requests.clear()
    await chat.say("/styles")
    [offer] = chat.calls("sendMessage")
    anime = StyleButton(what="pick", style="anime").pack()
    assert anime in _buttons(offer.reply_markup).values()
    await chat.feed(chat.tap(anime))
    [chosen] = chat.calls("editMessageText")
    assert "Anime" in chosen.text
    [apply_last] = _buttons(chosen.reply_markup).values()

    await chat.feed(chat.tap(apply_last))
    await chat.say("a harbour")
    jobs = [job for job in await chat.jobs() if job.id != last.id]
    assert sorted((job.prompt, job.options.get("style")) for job in jobs) == [
        ("a harbour", "anime"),
        ("a lighthouse", "anime"),
    ]

    await chat.feed(chat.tap(StyleButton(what="pick").pack()))
    await chat.say("a boat")
    [boat] = [job for job in await chat.jobs() if job.prompt == "a boat"]
    assert "style" not in boat.options


async def test_the_style_button_under_a_result_makes_it_again_in_that_style(chat: Chat) -> None:
    await chat.say("a lighthouse")
    [job] = await chat.jobs()
    job = await _delivered(chat, job)
    chat.session.requests.clear()
    await chat.feed(chat.tap(_buttons(result_keyboard(job, "images"))["🎨 Style"]))
    [offer] = chat.calls("sendMessage")
    cinematic = StyleButton(what="job", style="cinematic", job_id=job.id).pack()
    assert cinematic in _buttons(offer.reply_markup).values()

    await chat.feed(chat.tap(cinematic))
    [again] = [j for j in await chat.jobs() if j.id != job.id]
    assert again.prompt == "a lighthouse"
    assert again.options["style"] == "cinematic"
    assert again.options["aspect_ratio"] == "16:9"  # the style's default
    assert caption(again).endswith("🎬 Cinematic</i>")
