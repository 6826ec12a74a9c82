"""The kinds of breach an alert can allege: one vocabulary for labels, the tagger, subscriptions and
the English facts line.

The slugs are what ``data/**.jsonl`` items carry in ``breach_kinds`` (see docs/labelling.md), what the
tagger (:mod:`pipeline.classify.kinds`) predicts and what a subscription may filter on
(``kinds: [arms-transfer, ship-to-ship]``). Their order is the order alerts list them in. Nothing here
reads a file; adding a kind means relabelling the corpus and retraining the tagger.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["BREACH_KINDS", "KIND_LABELS", "kind_label", "sorted_kinds"]

# slug -> the English words an alert uses for it
KIND_LABELS: dict[str, str] = {
    "arms-transfer": "arms transfer",
    "ship-to-ship": "ship-to-ship transfer",
    "banned-export": "banned export",
    "oil-above-cap": "oil above the cap",
    "workers-abroad": "workers abroad",
    "luxury-goods": "luxury goods",
    "cyber-theft": "cyber theft",
    "banned-launch": "banned missile, satellite or nuclear launch or test",
    "asset-freeze-or-travel-ban-evasion": "asset-freeze or travel-ban evasion",
    "panel-finding": "panel or monitoring-team finding",
    "designation-for-evasion": "designation for sanctions evasion",
    "other": "other breach",
}
BREACH_KINDS: tuple[str, ...] = tuple(KIND_LABELS)


def kind_label(slug: str) -> str:
    """The English label of a kind (the slug itself when unknown, so nothing is hidden)."""
    return KIND_LABELS.get(slug, slug)


def sorted_kinds(kinds: Iterable[str]) -> tuple[str, ...]:
    """Known kinds in vocabulary order, without duplicates; unknown slugs are dropped."""
    wanted = set(kinds)
    return tuple(k for k in BREACH_KINDS if k in wanted)


def _cues(text: str) -> tuple[str, ...]:
    """``"a|b |c"`` as ``("a", "b ", "c")`` (keeps long cue tables short; spaces are kept)."""
    return tuple(c for c in text.replace("\n", "").split("|") if c)


# What each kind is about, in the words of docs/labelling.md and issue 14, in every language the
# corpus holds: the tagger's input marks which of these a text uses (pipeline/classify/kinds.py), so
# that a kind seen in training in one language or with one commodity ("coal") is recognised in another
# ("석탄", "charcoal"). Latin and Cyrillic cues match at the start of a word (stems: "hack" finds
# "hackers"); Arabic, Chinese and Korean cues anywhere. Changing this table changes the tagger's input:
# retrain the tagger (its metadata records the table's hash and the loader refuses a mismatch).
KIND_CUES: dict[str, tuple[str, ...]] = {
    "arms-transfer": _cues(
        "weapon|arms |arms,|ammunition|munition|artillery|shells|rocket|missiles to|drone|"
        "rifle|grenade|launcher|armoured|armored|military equipment|military vehicles|"
        "mercenar|arms embargo|armes|obus|roquette|blindé|embargo sur les armes|armas|"
        "municion|proyectil|cohete|embargo de armas|оружи|боеприпас|снаряд|вооружени|"
        "беспилотник|أسلحة|سلاح|ذخائر|ذخيرة|مسيرات|مسيّرات|حظر الأسلحة|무기|탄약|포탄|군수|드론|武器|弹药|"
        "炮弹|无人机|军火|"
    ),
    "ship-to-ship": _cues(
        "ship-to-ship|ship to ship|transship|transhipment|transfers at sea|transfer at sea|"
        "mid-sea|at sea|alongside|transponder|ais |spoof|false flag|hoses|transbord|"
        "de navire à navire|en mer|transbordo|de buque a buque|перевалк|судно-судно|"
        "с судна на судно|транспондер|من سفينة إلى سفينة|بين السفن|환적|선박 간|船对船|过驳|海上转运|"
    ),
    "banned-export": _cues(
        "coal|charcoal|anthracite|iron ore|pig iron|iron and steel|steel|seafood|"
        "fishing rights|fishing grounds|squid|textile|garment|banned export|charbon|"
        "minerai de fer|fruits de mer|carbón|mineral de hierro|mariscos|textil|уголь|угля|"
        "железн|морепродукт|текстил|الفحم|فحم|خام الحديد|المأكولات البحرية|المنسوجات|석탄|무연탄|"
        "철광석|선철|수산물|섬유|煤|木炭|铁矿|海产品|水产品|纺织品|"
    ),
    "oil-above-cap": _cues(
        "refined petroleum|refined oil|refined products|petroleum|fuel|diesel|barrel|cap |"
        "ceiling|tanker|oil terminal|pétrole|carburant|plafond|baril|petróleo|combustible|"
        "tope|barril|нефт|топлив|баррел|потолок|лимит|النفط|نفط|الوقود|برميل|المكررة|السقف|"
        "정제유|정유|석유|유류|배럴|상한|유조선|成品油|精炼石油|石油|燃油|桶|上限|油轮|"
    ),
    "workers-abroad": _cues(
        "worker|labourer|laborer|labour|labor |it workers|remote job|laptop farm|freelanc|"
        "construction site|student visa|travailleur|main-d'œuvre|trabajador|mano de obra|"
        "рабоч|работник|трудов|строител|عمال|العمالة|노동자|근로자|인력|劳工|工人|劳务|"
    ),
    "luxury-goods": _cues(
        "luxury|limousine|mercedes|maybach|rolls-royce|lexus|yacht|watches|wine|spirits|"
        "perfume|cosmetic|jewel|aurus|luxe|lujo|limusina|роскош|лимузин|аурус|الكمالية|"
        "الفاخرة|사치품|리무진|아우루스|승용차|奢侈品|豪车|轿车|"
    ),
    "cyber-theft": _cues(
        "hack|cyber|crypto|bitcoin|ether|stolen|heist|wallet|exchange|laundered|launder|"
        "mixer|defi|blockchain|lazarus|pirates informatiques|cyberattaque|"
        "piratas informáticos|ciberataque|criptomoneda|robo|хакер|кибер|криптовалют|взлом|"
        "قراصنة|اختراق|إلكتروني|العملات المشفرة|해킹|해커|가상자산|가상화폐|암호화폐|탈취|사이버|黑客|网络攻击|加密货币|"
        "虚拟货币|被盗|盗窃|"
    ),
    "banned-launch": _cues(
        "launch|fired|test-fired|ballistic missile test|icbm|irbm|slbm|satellite|"
        "nuclear test|lofted|splash|j-alert|trajectory|tir |lancement|essai|lanzamiento|"
        "disparó|ensayo|пуск|запуск|испытани|мбр|إطلاق|أطلقت|أطلق|تجربة|발사|시험발사|핵실험|위성|发射|试射|"
        "核试验|卫星|"
    ),
    "asset-freeze-or-travel-ban-evasion": _cues(
        "travel ban|asset freeze|assets frozen|frozen|exemption|un-listed|listed individual|"
        "sanctions list|designated individual|travelled|traveled|trip|visit|funds|"
        "interdiction de voyager|gel des avoirs|avoirs gelés|prohibición de viajar|"
        "congelación|activos congelados|запрет на въезд|запрет на поездки|заморо|حظر السفر|"
        "تجميد|المجمدة|여행 금지|자산 동결|동결|旅行禁令|资产冻结|冻结|"
    ),
    "panel-finding": _cues(
        "panel of experts|panel|experts|monitoring team|monitors|monitoring group|"
        "group of experts|final report|midterm report|msmt|s/20|groupe d'experts|rapport|"
        "grupo de expertos|informe|группа экспертов|групп|доклад|فريق الخبراء|تقرير|الخبراء|"
        "전문가패널|전문가 패널|보고서|모니터링팀|专家小组|专家组|报告|监测小组|"
    ),
    "designation-for-evasion": _cues(
        "designat|sanctioned|blacklist|treasury|ofac|sanctions on|imposed sanctions|added to|"
        "sanctionn|liste noire|sancion|lista negra|ввел санкции|санкции против|внес|"
        "عقوبات على|فرضت عقوبات|أدرج|제재 대상|독자 제재|제재했다|财政部|制裁|列入|"
    ),
    "other": _cues(
        "mineral|coltan|gold|natural resources|camps|safe house|safe haven|taxation|minerai|"
        "coltán|минерал|колтан|المعادن|광물|콜탄|矿产|钶钽|"
    ),
}
