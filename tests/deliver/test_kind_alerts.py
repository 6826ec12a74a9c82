"""End to end through the SMTP sink (aiosmtpd): a subscription filtered by breach kind receives only
alerts of that kind; every alert says the kind, who and where in English in its subject and facts line,
a Korean story included, with its original headline and evidence beside it; function words never
appear among the terms shown; without a servable tagger the kind filter lets alerts through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from builders import FEEDS, add_article, parse
from helpers import NOW

from pipeline.deliver.mail import SmtpSender
from pipeline.devtools.mailsink import MailSink
from pipeline.jobs import Runtime, deliver, record_alerts

SUBSCRIPTIONS = [
    {
        "id": "arms-desk",
        "recipients": ["arms@example.org"],
        "kinds": ["arms-transfer", "ship-to-ship"],
    },
    {"id": "cyber-desk", "recipients": ["cyber@example.org"], "kinds": ["cyber-theft"]},
    {"id": "everything", "recipients": ["all@example.org"]},
]
CYBER_TITLE = (
    "FBI says North Korea's Lazarus hackers stole $308 million in bitcoin from a Tokyo exchange"
)
CYBER = (
    "The bureau said the Lazarus Group, run by Pyongyang's military intelligence, stole bitcoin worth "
    "$308 million from the exchange and laundered it through mixers, money that pays for banned "
    "missile programmes."
)
KOREAN_TITLE = '북한, 나진항서 러시아에 포탄 컨테이너 300여 개 보내…정부 "안보리 결의 위반"'
KOREAN = (
    "정부 소식통은 15일 위성사진 분석 결과 북한이 러시아에 포탄과 탄약이 담긴 컨테이너 약 300개를 "
    "보냈다고 밝혔다. 컨테이너는 나진항에서 블라디보스토크로 옮겨졌다. 정부는 북한과의 모든 무기 "
    "거래를 금지한 유엔 안보리 결의 위반이라고 밝혔다."
)
HANGUL = re.compile(r"[\uac00-\ud7af]")


def runtime(make_config, tmp_path: Path, port: int, model_dir: Path | None = None) -> Runtime:
    config = make_config(
        database_url=f"sqlite:///{tmp_path / 'kinds.db'}",
        feeds=FEEDS,
        smtp_port=port,
        subscriptions=SUBSCRIPTIONS,
        model_dir=model_dir,
    )
    return Runtime.open(config)


def add_stories(rt: Runtime) -> None:
    add_article(rt, feed="wire", title=CYBER_TITLE, summary=CYBER, url="https://wire.example/cyber")
    add_article(
        rt,
        feed="daily",
        title=KOREAN_TITLE,
        summary=KOREAN,
        url="https://daily.example/ko/rajin",
        lang="ko",
        sentences=(
            "정부 소식통은 15일 북한이 러시아에 포탄이 담긴 컨테이너 약 300개를 보냈다고 밝혔다.",
        ),
        terms=("밝혔다", "컨테이너", "있다", "포탄"),
    )
    assert record_alerts(rt, now=NOW)["alerts_new"] == 2


def mail_by_recipient(sink: MailSink) -> dict[str, list]:
    out: dict[str, list] = {}
    for raw in sink.messages:
        msg = parse(raw)
        out.setdefault(str(msg["To"]), []).append(msg)
    return out


def test_kind_filter_facts_line_and_english_subjects(make_config, tmp_path: Path) -> None:
    with MailSink(tmp_path / "box") as sink:
        with runtime(make_config, tmp_path, sink.port) as rt:
            add_stories(rt)
            report = deliver(rt, now=NOW, sender=SmtpSender(rt.config.smtp))
            assert report["sent"] == 4 and report["failed"] == 0
        mail = mail_by_recipient(sink)
    # the kind filter: each desk gets only its kind; the unfiltered subscription gets both
    assert sorted(len(v) for v in mail.values()) == [1, 1, 2]
    (arms,) = mail["arms@example.org"]
    (cyber,) = mail["cyber@example.org"]
    assert "Cyber theft" in cyber["Subject"] and "Cyber theft" not in arms["Subject"]
    # the Korean story: subject and facts line in English, the original kept beside them
    subject = str(arms["Subject"])
    assert subject.startswith("[sanctions-watch] ") and "· Arms transfer" in subject
    assert "North Korea → Russia" in subject and "[Korean]" in subject
    assert not HANGUL.search(subject)
    text = arms.get_body(preferencelist=("plain",)).get_content()
    facts = next(line for line in text.splitlines() if line.startswith("WHAT IS ALLEGED"))
    assert not HANGUL.search(facts)
    assert "Kind: arms transfer" in facts and "Who: North Korea → Russia" in facts
    assert "Where: Rajin → Vladivostok" in facts and "Regime: DPRK" in facts
    assert f"Original headline (Korean): {KOREAN_TITLE}" in text
    assert "북한이 러시아에 포탄이 담긴 컨테이너" in text  # the original evidence, untranslated
    # evidence terms without function words ("밝혔다" said, "있다" is)
    terms = next(line for line in text.splitlines() if "Terms that raised the score" in line)
    assert terms.strip() == "Terms that raised the score: 컨테이너, 포탄"
    html = arms.get_body(preferencelist=("html",)).get_content()
    assert "<b>What is alleged:</b> Kind: arms transfer" in html and 'lang="ko"' in html
    # an English story keeps its headline after the kind
    assert str(cyber["Subject"]).endswith("· Cyber theft · " + CYBER_TITLE)


@pytest.mark.parametrize("kinds_dir", ["missing", "refused"])
def test_without_a_tagger_the_kind_filter_lets_alerts_through(
    make_config, tmp_path: Path, kinds_dir: str
) -> None:
    models = tmp_path / "models"
    (models / "kinds").mkdir(parents=True)
    if kinds_dir == "refused":
        (models / "kinds" / "registry.json").write_text('{"active": "gone", "history": []}')
    with MailSink(tmp_path / "box") as sink:
        with runtime(make_config, tmp_path, sink.port, model_dir=models) as rt:
            add_stories(rt)
            deliver(rt, now=NOW, sender=SmtpSender(rt.config.smtp))
        mail = mail_by_recipient(sink)
    assert [len(mail[r]) for r in ("arms@example.org", "cyber@example.org", "all@example.org")] == [
        2,
        2,
        2,
    ]
    text = mail["arms@example.org"][0].get_body(preferencelist=("plain",)).get_content()
    assert "Kind: not tagged" in text
