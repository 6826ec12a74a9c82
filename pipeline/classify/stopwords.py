"""Function words of every supported language, and :func:`meaningful_terms`, which keeps them out of
the evidence terms an alert shows.

The evidence terms are the word n-grams that pushed a score up (:meth:`TextModel._explain_linear`).
A linear model gives weight to whatever separates the classes in its training data, function words
included ("said", Korean 밝혔다 "said" and 있다 "is"); shown to an analyst they explain nothing. The
lists below hold the function words (articles, pronouns, prepositions, conjunctions, auxiliaries,
particles and endings) and the reporting verbs of news copy ("said", "told", "according"), per
language, lower case. Content words are never listed, so nothing here can hide a sanctions term.

Pure and deterministic: the lists are data in this module (shipped with the package, nothing is read
at run time).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["LANGUAGES", "STOP_WORDS", "is_stop_word", "meaningful_terms"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.casefold().split())


STOP_WORDS: Mapping[str, frozenset[str]] = {
    "en": _words(
        """a about above according across after afterwards again against ago all almost along already
        also although always am among amongst an and another any anyone anything are around as at
        be became because become becomes been before being below beside besides between both but by
        can cannot could did do does doing done down during each either else etc even ever every for
        from further had has have having he her here hers herself him himself his how however i if in
        including into is it its itself just last least less many may me meanwhile might mine more
        most mostly much must my myself neither never nevertheless next no nor not now of off often on
        once one only onto or other others otherwise our ours ourselves out over own per perhaps
        rather said say saying says she should since so some somehow someone something sometimes such
        than that the their theirs them themselves then there thereby therefore these they this those
        though through throughout thus to together told too toward towards under until up upon us
        very via was we well were what whatever when whenever where whereas whether which while who
        whoever whom whose why will with within without would yet you your yours yourself
        yourselves also's it's that's there's he's she's don't didn't doesn't isn't wasn't weren't
        won't wouldn't can't couldn't shouldn't haven't hasn't hadn't aren't i'm we're they're
        you're i've we've they've we'll they'll mr mrs ms s t""",
    ),
    "fr": _words(
        """a à afin ai aie aient aies ainsi ait alors as au aucun aucune aujourd aujourd'hui auquel
        aura aurai auraient aurais aurait auras aurez auriez aurions aurons auront aussi autre
        autres aux auxquelles auxquels avaient avais avait avant avec avez aviez avions avoir avons
        ayant ayez ayons c ça car ce ceci cela celle celles celui cependant certain certaines certains
        ces cet cette ceux chacun chaque chez ci comme comment contre d dans de déclaré depuis des
        desquelles desquels dès donc dont du duquel durant elle elles en encore entre es est et étaient
        étais était étant été êtes étiez étions être eu eue eues eûmes eurent eus eut eux fait faire
        fois font fut furent hors ici il ils j je jusqu jusque l la laquelle le lequel les lesquelles
        lesquels leur leurs lors lorsque lui m ma mais me même mêmes mes moi mon n ne ni nos notre nous
        on ont ou où par parce parmi pas pendant peu peut plus plusieurs pour pourquoi puis qu quand que
        quel quelle quelles quels qui quoi sa sans se selon ses seulement si sien sienne soi soient
        sois soit sommes son sont sous souvent suis sur t ta te tes toi ton tous tout toute toutes
        très tu un une unes uns vers via voici voilà vont vos votre vous y affirmé indiqué précisé
        ajouté estimé annoncé selon""",
    ),
    "es": _words(
        """a al algo algunas algunos ante antes aquel aquella aquellas aquellos aquí así aun aunque
        cada como con contra cual cuales cuando cuanto de del desde donde dos durante e el él ella
        ellas ellos en entre era eran eres es esa esas ese eso esos esta está estaba estaban estado
        están estar estas este esto estos fue fueron fui ha había habían han has hasta hay he la las
        le les lo los más me mi mientras mis mucho muy nada ni no nos nosotros o otra otras otro otros
        para pero poco por porque que qué quien quienes se sea según ser si sí sido siempre sin sino
        sobre su sus también tan tanto te tiene tienen todo todos tras tu tus u un una unas uno unos
        usted ya y yo afirmó dijo explicó indicó señaló añadió aseguró informó según hacia bajo
        mediante""",
    ),
    "pt": _words(
        """a à ao aos aquela aquelas aquele aqueles aquilo as às até com como da das de dela delas dele
        deles depois do dos e é ela elas ele eles em entre era eram essa essas esse esses esta está
        estão estas este estes eu foi foram há isso isto já lhe lhes mais mas me mesmo meu minha muito
        na não nas nem no nos nós num numa o os ou para pela pelas pelo pelos por qual quando que quem
        se sem ser seu seus sua suas também te tem têm um uma umas uns você afirmou disse segundo""",
    ),
    "it": _words(
        """a ad agli ai al alla alle allo anche che chi ci come con contro cui da dal dalla dalle dallo
        degli dei del della delle dello di dopo e è ed era erano essere gli ha hanno i il in io la le
        lo loro ma mi ne nei nel nella nelle nello noi non o per perché più quale quando quella quelle
        quello questa queste questo se si sia siamo sono su sua sue sui sul sulla suo suoi tra tutti
        tutto un una uno vi dichiarato detto secondo""",
    ),
    "de": _words(
        """aber alle allem allen aller alles als also am an ander andere anderem anderen anderer
        anderes auch auf aus bei beim bin bis bist da damit dann das dass dem den denn der des dessen
        dich die dies diese diesem diesen dieser dieses dir doch dort du durch ein eine einem einen
        einer eines er es etwa euch für gegen gewesen hat hatte hätte haben ich ihm ihn ihnen ihr ihre
        im in ins ist jede jedem jeden jeder jedes jetzt kann kein keine man mehr mit muss nach nicht
        noch nun nur ob oder ohne seine seinem seinen seiner sich sie sind so soll sollen sowie über um
        und uns unter vom von vor war waren was weil welche wenn werden wie wieder wird wir wo wurde
        wurden zu zum zur zwischen sagte erklärte laut""",
    ),
    "ru": _words(
        """а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да даже
        для до его ее её ей если есть еще ещё же за здесь и из или им их к как какой когда кто ли
        либо между меня мне может мы на над надо наш не него нее неё нет ни них но ну о об однако он
        она они оно от очень по под после при про с со так также такой там те тем то того тоже той
        только том ты у уже чем что чтобы эта эти это этого этой этом этот я будет будут является
        являются который которая которое которые которых которым которой заявил заявила заявили
        сообщил сообщила сообщили сказал сказала сказали отметил отметила словам данным ранее году
        года г любой любая любую любые любого всё""",
    ),
    "uk": _words(
        """а або але б без би був була були було бути в вже ви від він вона вони воно все всі де для до
        є ж за з зі і із її їх й як які який яка яке коли крім лише між ми на над не ні нею нього
        них о от та так також там те тим то тобто тут у хоча це цей ця ці цих цього чи що щодо я
        після перед через під при про тільки навіть ще заявив заявила заявили повідомив повідомила
        повідомили сказав сказала""",
    ),
    "ar": _words(
        """في من على إلى الى عن مع أن ان إن أنه انه إنه كان كانت يكون تكون التي التى الذي الذين
        اللذين اللتين هذا هذه ذلك تلك هؤلاء هو هي هم هما نحن ثم أو او و ف ب ل لا لم لن ما قد كما
        بعد قبل بين حتى عند كل أي إذا اذا حيث خلال منذ ضد عبر نحو لدى إلا الا غير أيضا أيضاً فيما
        بينما كذلك لكن ولكن به بها له لها لهم فيه فيها منه منها عليه عليها إليه إليها وقد وفي ومن
        وعلى وأن وإن وهو وهي وكان وكانت وما ولا ولم وقال قال قالت وقالت أكد وأكد أضاف وأضاف أعلن
        وأعلن أشار وأشار أوضح وأوضح لقد هناك هنا اليوم أمس يوم إنها أنها انها أضافت وأضافت تم""",
    ),
    "fa": _words(
        """و در به از که این آن را با است برای یک تا بر هم نیز شد شده شود شوند می کرد کرده کند کنند
        دارد داشت بود بوده باشد بودند های ها خود او ما شما آنها ایشان وی باید پس اما یا اگر هر بین
        پیش بعد روی زیر همه چه دیگر گفت گفته گفتند اعلام همین چنین چون ولی زیرا""",
    ),
    "ko": _words(
        """했다 있다 것으로 밝혔다 말했다 전했다 했다고 있다고 밝혔다고 말했다고 있는 없는 없다 있으며
        했으며 하며 한다 된다 됐다 되었다 했고 하고 하는 하여 해 해서 하면 하지만 그러나 그리고 또 또한
        및 등 등을 등이 등의 등은 이 그 저 것 것이 것은 것을 것이다 수 위해 위한 통해 통한 대해 대한
        따르면 따라 관련 관련해 가운데 이번 지난 오는 이날 당시 현재 경우 때문 때문에 중 중인 까지
        부터 에서 으로 에게 에는 이라고 라고 이라며 라며 했다며 있다며 보도했다 설명했다 강조했다
        덧붙였다 지적했다 주장했다 나타났다 알려졌다 보인다 예정이다 아니다 이다 였다 이었다 같은 다른
        모든 각 더 가장 매우 다시 약 이상 이후 이전 동안 함께 은 는 가 을 를 의 에 로 와 과 도 만
        이것이 이것은 이는 이를 그것은""",
    ),
    "zh": _words(
        """的 了 在 是 和 与 及 等 对 将 已 也 就 都 而 其 该 此 这 那 这个 那个 一个 表示 称 说 据 被
        从 向 于 为 以 并 或 但 但是 如果 因为 所以 没有 不 很 还 又 会 可能 可以 进行 认为 指出 报道
        之 中 上 下 后 前 着 过 我们 他们 她们 它们 他 她 它 我 你 任何 所有 一些 这些 那些""",
    ),
    "ja": _words(
        """の に は を た が で て と し れ さ ある いる も する から な こと として い や れる など なっ
        ない この ため その あっ よう また もの という あり まで られ なる へ か だ これ によって により
        おり より による ず なり られる において ば なかっ なく しかし について せ だっ できる それ う
        ので なお のみ でき き つ における および いう さらに でも ら たり に関する ます ん 述べた""",
    ),
}
LANGUAGES: tuple[str, ...] = tuple(STOP_WORDS)
_ALL: frozenset[str] = frozenset().union(*STOP_WORDS.values())


def _stop_set(lang: str | None) -> frozenset[str]:
    """The language's function words; every language's when the language is unknown."""
    return STOP_WORDS.get((lang or "").casefold().split("-")[0], _ALL)


def is_stop_word(word: str, lang: str | None) -> bool:
    return word.casefold() in _stop_set(lang)


# Seven or more Han or kana characters in a row: a clause, not a term (most words are 1-4).
_UNSPACED_CLAUSE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]{7,}")


def meaningful_terms(terms: Iterable[str], lang: str | None) -> tuple[str, ...]:
    """``terms`` without function words of ``lang`` (every language's when it is unknown).

    A term is an n-gram ("arms to", "north korean"): function words are trimmed from both ends
    ("arms to" → "arms"), and a term left empty, or made only of digits and punctuation, is dropped.
    So is a run of Chinese or Japanese characters longer than a word (the word tokenizer splits at
    spaces and punctuation only, so such a run is a whole clause; the quoted passages show it).
    Order is kept; duplicates produced by trimming are dropped. Pure.
    """
    stop = _stop_set(lang)
    out: list[str] = []
    for term in terms:
        words = str(term).split()
        while words and words[0].casefold() in stop:
            words.pop(0)
        while words and words[-1].casefold() in stop:
            words.pop()
        kept = " ".join(words)
        if not kept or not any(ch.isalpha() for ch in kept) or kept in out:
            continue
        if _UNSPACED_CLAUSE.search(kept):
            continue
        out.append(kept)
    return tuple(out)
