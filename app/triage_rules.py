"""Phrase tables for triage: target concepts and ConText modifiers, as case-insensitive regular expressions."""

# Targets name clinical concepts (one label per concept); app/triage.py turns the concepts asserted for the patient
# (not negated, historical, hypothetical or someone else's) into red flags. Patterns are general clinical phrasings,
# not text lifted from any one case. Matches are widened to whole tokens, so a pattern may stop mid-word.

from __future__ import annotations

# --- building blocks -----------------------------------------------------------------------------------

SELF = r"(?:himself|herself|themselves|themself|myself|yourself)"
POSS = r"(?:his|her|their|my|your)"
SUBJ = r"(?:s?he|they|I|you)"
NUM_WORDS = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|a few|a couple of|several)"
# Someone other than the patient, as the subject of a sentence ("her mother has", "his brother died").
RELATIVE = (
    r"(?:mother|mum|mom|father|dad|brother|sister|sibling|son|daughter|grandmother|grandfather|grandparent|"
    r"grandma|grandpa|gran|aunt|uncle|cousin|niece|nephew|parent|wife|husband|partner|spouse|friend|flatmate|"
    r"roommate|colleague|classmate|boyfriend|girlfriend|fianc[ée]e?|stepfather|stepmother|relative)s?"
)
HARM_VERB = r"(?:kill|murder|hurt|harm|attack|stab|shoot|strangle|smother|drown|poison|beat up|assault)"
VICTIM = (
    r"(?:someone|somebody|anyone|people|others|other people|him\b|her\b|them\b|"
    rf"(?:his|her|their|my|the|a) (?!own\b){RELATIVE}|(?:his|her|their|my|the|a) [\w-]+(?: [\w-]+)?)"
)
MEDS = (
    r"(?:tablets|tabs|pills|capsules|medications?|medicines?|meds|painkillers|sleeping (?:tablets|pills)|insulin|"
    r"paracetamol|acetaminophen|morphine|opioids|antidepressants)"
)

SEROTONERGIC = (
    r"sertraline|fluoxetine|citalopram|escitalopram|paroxetine|fluvoxamine|venlafaxine|desvenlafaxine|duloxetine|"
    r"levomilnacipran|milnacipran|clomipramine|imipramine|amitriptyline|nortriptyline|dosulepin|doxepin|"
    r"phenelzine|tranylcypromine|isocarboxazid|moclobemide|selegiline|rasagiline|linezolid|methylene blue|"
    r"trazodone|vortioxetine|vilazodone|mirtazapine|buspirone|lithium|tramadol|tapentadol|pethidine|meperidine|"
    r"fentanyl|methadone|dextromethorphan|ondansetron|granisetron|\w+triptan|st\.? john'?s wort|mdma|ecstasy|"
    r"cocaine|(?:meth)?amphetamines?|ssris?|snris?|maois?|tricyclics?|antidepressants?|triptans?"
)
ANTIPSYCHOTIC = (
    r"haloperidol|olanzapine|risperidone|quetiapine|aripiprazole|clozapine|chlorpromazine|flupent?hixol|"
    r"zuclopenthixol|fluphenazine|perphenazine|trifluoperazine|sulpiride|amisulpride|paliperidone|lurasidone|"
    r"ziprasidone|asenapine|cariprazine|brexpiprazole|iloperidone|pimozide|levomepromazine|prochlorperazine|"
    r"metoclopramide|droperidol|promazine|antipsychotics?|neuroleptics?|depot injections?"
)
OPIOID = (
    r"heroin|fentanyl|carfentanil|methadone|oxycodone|oxycontin|morphine|codeine|tramadol|buprenorphine|"
    r"subutex|suboxone|hydromorphone|dihydrocodeine|tapentadol|pethidine|diamorphine|opioids?|opiates?|"
    r"nitazenes?"
)
SEDATIVE = (
    r"benzodiazepines?|benzos?|diazepam|lorazepam|alprazolam|clonazepam|temazepam|chlordiazepoxide|"
    r"nitrazepam|xanax|valium|etizolam|zopiclone|zolpidem|phenobarbital|gabapentin|pregabalin|ghb|gbl"
)
LITHIUM = r"lithium|priadel|camcolit|liskonum|lithonate|lithobid"
OTHER_DRUGS = r"paracetamol|acetaminophen|ibuprofen|aspirin|naproxen|co-codamol|propranolol|insulin|antihistamines?"
ALCOHOL = r"alcohol|alcoholic|drinking|drinks|drinker|drunk|vodka|whisky|whiskey|gin|rum|wine|beers?|lager|cider|booze"
DRUG_NAMES = f"{SEROTONERGIC}|{ANTIPSYCHOTIC}|{OPIOID}|{SEDATIVE}|{LITHIUM}|{OTHER_DRUGS}"
# Drug classes, matched against the text of any mention (a drug name can sit inside a longer phrase such as
# "stopped her diazepam" or "lithium level 1.8"); a drug may belong to several classes (tramadol, lithium).
DRUG_CLASSES: dict[str, str] = {
    "serotonergic": SEROTONERGIC,
    "antipsychotic": ANTIPSYCHOTIC,
    "opioid": OPIOID,
    "sedative": SEDATIVE,
    "lithium": LITHIUM,
    "alcohol": ALCOHOL,
}

# --- targets: concept label -> patterns ------------------------------------------------------------------

TARGETS: dict[str, tuple[str, ...]] = {
    # Wish to be dead without thoughts of acting (C-SSRS q1 territory).
    "SI_PASSIVE": (
        r"\bbetter off dead",
        r"\bbetter off (?:without (?:him|her|them|me)\b|if (?:s?he|they|I) (?:was|were) (?:dead|gone))",
        rf"\bwish(?:es|ed|ing)?(?: that)? {SUBJ} (?:was|were|could be|had been|would be) (?:dead|gone)",
        r"\bwish(?:es|ed|ing)? to (?:be dead|die|not exist|disappear)",
        rf"\bwish(?:es|ed|ing)?(?: that)? {SUBJ} (?:could |would )?(?:just )?(?:go to sleep and |fall asleep and )?"
        r"(?:not|never) (?:wake|woke) up",
        rf"\bwish(?:es|ed|ing)?(?: that)? {SUBJ} (?:hadn't|had not|had never|didn't|did not) "
        r"(?:come back|survived|woken up|been born|wake up)",
        rf"\bwish(?:es|ed|ing)?(?: that)? {SUBJ} (?:could )?(?:just )?(?:disappear|not exist|vanish)",
        r"\b(?:doesn't|does not|didn't|did not|don't|do not) want to (?:wake up|be here|be alive|live|go on|exist)",
        r"\bnot (?:wanting|want) to (?:wake up|be here|be alive|live|go on|exist|be around)",
        r"\b(?:thinks|thinking|thought|dwells? on|dwelling on|preoccupied with) (?:a lot |often |constantly )?"
        r"(?:about|of) (?:death|dying|being dead)",
        r"\b(?:go|goes|going) to sleep and (?:not|never) wake up",
        r"\b(?:no|little) (?:point|reason) (?:in )?(?:going on|living|being alive|carrying on|to live|to go on)",
        r"\blife (?:is|isn't|is not|was|wasn't|feels|doesn't feel) (?:not )?worth living",
        r"\bnot worth living",
        r"\b(?:tired|sick|weary) of (?:living|life|being alive)",
        r"\b(?:wants?|wanted|wanting) to die\b",
        rf"\b(?:would(?:n't| not)|does(?:n't| not)|did(?:n't| not)) (?:mind|care) if {SUBJ} "
        r"(?:died|were dead|was dead|didn't wake up|did not wake up|never woke up|was killed|got (?:hit|run over)"
        r"[\w ]{0,30})",
        r"\bthoughts? (?:of|about) (?:death|dying|being dead)",
        r"\bdeath wish",
        r"\bpassive (?:suicidal )?(?:ideation|thoughts|death wish)",
        r"\b(?:can't|cannot|can not) (?:go on|carry on)(?: living)?",
        r"\b(?:won't|will not|wouldn't|would not) be (?:around|here) (?:much longer|for (?:much )?longer|for long|"
        r"any ?more|next (?:week|month|year))",
        r"(?-i:\bpassive SI\b)",
    ),
    # Active thoughts of suicide or of a method, without plan or intent (C-SSRS q2/q3).
    "SI_ACTIVE": (
        r"\bsuicidal(?: (?:ideation|thoughts?|feelings|urges|ideas|thinking))?",
        r"(?-i:\bSI\b)",
        r"\b(?:suicide|suicidal) (?:ideation|thoughts)",
        r"\b(?:thoughts?|thinking|thought|thinks|think|ideas?|urges?|considered|considering|contemplat\w+) "
        rf"(?:of|about) (?:suicide|killing {SELF}|ending {POSS} (?:own )?life|taking {POSS} own life|"
        r"ending it(?: all)?)",
        rf"\b(?:kill|killing|killed) {SELF}",
        rf"\b(?:end|ending) {POSS} (?:own )?life",
        rf"\btak(?:e|ing) {POSS} own life",
        r"\bend(?:ing)? it all\b",
        rf"\b(?:use|turn|used|turned|using|turning) (?:it|the gun|a gun|his gun|her gun|the knife|a knife) on {SELF}",
        r"\b(?:thought|thinks|thinking|considered|considering) (?:about |of )?(?:driving|crashing) "
        r"(?:his|her|their|the) car (?:into|off)",
        r"\bcommit(?:ting)? suicide",
        r"\b(?:thought|thinks|thinking|considered|considering|contemplat\w+|imagin\w+|fantasi[sz]\w+|research\w*) "
        r"(?:about |of )?(?:taking |having |doing )?(?:an? )?overdos\w*",
        r"\b(?:thought|thinks|thinking|considered|considering|contemplat\w+) (?:about |of )?(?:taking|swallowing) "
        rf"(?:all |a lot of |a handful of |the whole |the rest of )?(?:[\w']+ ){{0,2}}{MEDS}",
        r"\b(?:thought|thinks|thinking|considered|considering|contemplat\w+) (?:about |of )?"
        rf"(?:jumping|hanging {SELF}|hanging|cutting {POSS} (?:wrists?|throat)|shooting {SELF}|drowning {SELF}|"
        r"crashing (?:his|her|the|their) car|driving (?:into|off)|stepping in front of)",
    ),
    # Thoughts of self-harm (EPDS item 10 territory).
    "SELF_HARM_IDEATION": (
        r"\b(?:thoughts?|thought|thinking|urges?|ideas?|impulses?) (?:of|about|to) "
        rf"(?:harming|hurting|cutting|injuring|burning) {SELF}",
        r"\b(?:thoughts?|thought|urges?|impulses?) (?:of|about|to) self[- ]?(?:harm(?:ing)?|injur\w+)",
        rf"\b(?:wants?|wanted|wanting) to (?:hurt|harm|cut|injure) {SELF}",
    ),
    # Self-harm acts (recent unless ConText says otherwise).
    "SELF_HARM": (
        r"\bself[- ]?harm(?:ed|ing|s)?\b",
        r"\bself[- ]?injur\w*",
        rf"\b(?:cut|cuts|cutting|burnt|burned|burning|scratch\w*|hit|hitting|punch\w*) {SELF}",
        rf"\b(?:cut|cuts|cutting|slash\w*|scratch\w*|burn\w*) {POSS} "
        r"(?:wrists?|arms?|forearms?|legs?|thighs?|stomach|skin)",
        r"\b(?:has been|started|starting|began|begun) cutting",
    ),
    # Explicit plan or intent to die; emergency on its own.
    "SI_PLAN": (
        r"\b(?:plans?|planning|planned|intends?|intending|intended|going|decided) to (?:take|swallow) "
        rf"(?:all|the lot|a handful|handfuls|the whole|the rest|everything|a (?:box|packet|bottle))(?: of)? "
        rf"(?:[\w']+ ){{0,3}}{MEDS}",
        r"\b(?:plans?|planned|planning|intends?|intended|intending|intent|intention|decided|is going|was going|going) "
        rf"to (?:kill {SELF}|end {POSS} (?:own )?life|take {POSS} (?:own )?life|commit suicide|die\b|hang {SELF}|"
        rf"overdose|take an overdose|jump (?:off|from|in front)|shoot {SELF}|end it(?: all)?|gas {SELF})",
        r"\b(?:will|'ll|gonna|is going to|'s going to|am going to) "
        rf"(?:kill {SELF}|end {POSS} (?:own )?life|take {POSS} (?:own )?life|end it all)",
        r"\b(?:will|'ll|going to|plans? to|planning to|intends? to) (?:drive|crash) (?:his|her|their|the) car "
        r"(?:into|off)",
        r"\b(?:suicide|suicidal) (?:plans?|intent|intention|plan and intent)",
        r"\b(?:a|has a|have a|with a|made a|specific|clear|detailed|definite|concrete) plan "
        r"(?:to|for|of how to) (?:kill|end (?:his|her|their|my) life|die|suicide|commit suicide|overdose|jump|hang)",
        rf"\bplann(?:ed|ing) (?:an overdose|(?:his|her|their|my) (?:suicide|death)|to kill {SELF})",
    ),
    # Plan or intent words that mean suicide only next to suicidal talk ("no plan or intent" is negated).
    "PLAN_GENERIC": (
        r"\b(?:has|have|had|with|having|reports|reported|admits|admitted|describes|described|endorses|endorsed|"
        r"formed|made|making|got) (?:a |any )?"
        r"(?:specific |clear |definite |detailed |concrete |firm |worked-out )?plan\b"
        r"(?! (?:for (?:follow|review|treatment|care|her care|his care|therapy|work|the|her|his)|"
        r"with (?:the|her|his|their|a|my|our)|of care|to (?!(?:kill|end|die|jump|hang|take|overdose|do it)\b)))",
        r"\bplan (?:and|or|&|/) intent\b",
        r"\bintent (?:and|or|&|/) plan\b",
        r"\bplanned (?:it|how|when|where|the method|the date)\b",
        r"\b(?:has|have|with|expressed|expresses|expressing|clear|definite|strong|stated|voiced|admits|admitted|"
        r"endorses|endorsed|reports|reported) (?:some |clear |definite |strong |current )?intent(?:ion)?\b"
        r"(?! to (?:return|go|start|stop|see|attend|work|move|get|try))",
        r"\bintent(?:ion)? (?:to|of) (?:die|dying|act|acting|do it|kill|killing|end|ending|carry|go through)",
        r"\bintend(?:s|ed|ing)? to (?:do it|do so|act|go through|carry (?:it|this) out|end|kill|die|jump|hang|"
        r"overdose|take (?:them|it|all|the|her|his|an|their))",
        r"\b(?:is|'s|am|are|was) going to (?:do it|do this|go through with it|act on (?:it|them|this))",
        r"\b(?:act|acting|acted) on (?:it|them|these thoughts|the thoughts|this|those thoughts|the urges)",
        r"\b(?:worked out|decided|chosen|figured out|thought about) (?:how|when|where)\b(?: (?:s?he|they|I|to)\b)?",
        r"\bdecided to (?:do it|do so|go through with it|end it|act on)",
        r"\b(?:set|chosen|picked|fixed) (?:a|the) (?:date|day|time)\b",
    ),
    # Intent to take tablets, or to "get it over with": suicidal only with other suicidal signs nearby.
    "INTENT_WEAK": (
        r"\b(?:going|plans?|planning|intends?|intending|will) to (?:take|swallow) "
        rf"(?:(?:[\w-]+'s|leftover|spare|stored|saved|old|remaining|all|extra|the rest of) (?:[\w']+ ){{0,3}}{MEDS}|"
        rf"(?:[\w']+ ){{0,4}}{MEDS} (?:tonight|this (?:evening|weekend)|tomorrow|later|when|to (?:end|die|sleep)))",
        r"\bto get it (?:all )?over with",
        r"\b(?:plans?|planning|intends?|intending|going) to use (?:it|them|the rope|the tablets)\b",
    ),
    # Preparatory behaviour that speaks for itself.
    "SUICIDE_PREP": (
        r"\bstock-?pil\w+",
        rf"\b(?:stash|hoard|secret supply) of (?:\w+ )?{MEDS}",
        r"\b(?:saving|saved|hoarding|hoarded|collecting|collected|stashing|stashed|building up|storing up) (?:up )?"
        rf"(?:all )?(?:{POSS} |the |some |a )?(?:\w+ )?{MEDS}",
        r"\b(?:suicide|goodbye|farewell) (?:notes?|letters?|cards?|messages?|texts?|videos?|emails?)",
        r"\b(?:bought|buying|purchased|ordered|obtained|got hold of|acquired) (?:a |some |the )?"
        r"(?:length of )?(?:rope|noose|ligature|hose ?pipe|hose|charcoal|helium|exit bag|poison)",
        r"\b(?:researched|researching|searched|searching|looked up|looking up|googled|googling|reading up on) "
        r"(?:online )?(?:for )?(?:suicide methods|methods of suicide|(?:suicide )?methods|ways to (?:die|kill|end)|"
        r"how to (?:kill|die|end|overdose|hang)|lethal (?:doses?|amounts?)|fatal (?:doses?|amounts?)|"
        r"how many (?:tablets|pills)|painless ways)",
        r"\bnoose",
        r"\b(?:tied|tying|made|making) (?:a )?(?:noose|ligature)",
        r"\b(?:rehears\w+|practis\w+|practic\w+) (?:hanging|suicide|the attempt|jumping|an overdose)",
        r"\b(?:stood|standing|went|been going|goes) (?:on|at|to) (?:the |a )?(?:edge of (?:the |a )?)?"
        r"(?:bridge|cliff|cliff edge|roof|railway|train line|tracks|ledge|car park roof|parapet)",
    ),
    # Warning signs that mean preparation only with other suicidal signs nearby.
    "PREP_WEAK": (
        r"\b(?:gave|giving|given|give|gives) away (?:all )?(?:of )?(?:his|her|their|my)? ?(?:\w+ )?"
        r"(?:belongings|possessions|things|stuff|money|savings|pets?|dog|cat|jewellery|jewelry)",
        r"\b(?:gave|giving|given|gives) (?:away )?(?:his|her|their|my) (?:dog|cat|pets?|belongings|possessions|"
        r"things|jewellery|jewelry|car|savings) (?:away|to)\b",
        r"\b(?:updated|changed|made|wrote|written|writing|rewrote|rewritten|sorted out) (?:his|her|their|a|my) will\b",
        r"\b(?:put|putting|getting|got|sorted) (?:his|her|their|my) affairs in order",
        r"\b(?:has|have|kept|keeps|keeping|hidden|hid|hides|stored) (?:a |the )?(?:rope|noose|ligature|hose ?pipe|"
        r"charcoal)\b",
        r"\b(?:texted|messaged|sent|wrote|writing) (?:[\w']+ ){0,3}goodbye\b",
        r"\b(?:said|saying|says) goodbyes?\b",
        r"\b(?:wrote|written|writing|left|leaving) (?:\w+ )?(?:letters?|notes?|cards?) (?:to|for) (?:his|her|their|my) "
        r"(?:children|kids|family|partner|wife|husband|parents|daughters?|sons?|mum|dad|mother|father|friends)",
    ),
    # A suicide attempt or overdose (taken as recent unless history or time words say otherwise).
    "ATTEMPT": (
        r"\b(?:suicide|suicidal) attempts?",
        r"\battempted suicide",
        r"\b(?:attempt(?:ed|s|ing)?|tried|trying) to "
        rf"(?:kill {SELF}|end {POSS} (?:own )?life|take {POSS} (?:own )?life|hang {SELF}|drown {SELF}|"
        rf"suffocate {SELF}|poison {SELF}|gas {SELF}|strangle {SELF}|overdose)",
        r"\boverdos(?:ed|ing)\b",
        r"\boverdoses?\b",
        r"\b(?:took|taken|had|swallowed|has taken) (?:a |an |another |her |his |a deliberate |an intentional |"
        r"a large |a significant |a staggered |a further )?(?:\w+ )?overdose",
        rf"\b(?:hanged|hung|hanging|strangled|strangling|drowning|poisoned|poisoning|gassed) {SELF}",
        r"\battempted (?:hanging|strangulation|drowning|overdose)",
        rf"\b(?:jumped|threw {SELF}) (?:from|off|in front of|into|onto)",
        r"\bstepped in front of (?:a|the) (?:train|bus|car|lorry|truck)",
        rf"\b(?:slit|slashed) {POSS} (?:wrists?|throat)",
        rf"\bshot {SELF}",
        r"\bempty (?:pill |tablet |medication )?(?:packets|boxes|bottles|blister packs|strips)\b",
        r"\b(?:tied|used) a ligature",
        r"\b(?:took|swallowed|taken|ingested) (?:all|a handful|handfuls|the whole|a whole|an entire|the entire|"
        r"the rest|a (?:box|packet|pack|bottle|strip|week's supply|month's supply)) (?:of )?(?:[\w'-]+ ){0,4}"
        rf"(?:{MEDS}|supply|box|packet|bottle)",
    ),
    # "took 20 paracetamol tablets": an overdose only when the count is large (checked in code).
    "INGESTION_COUNT": (
        r"\b(?:took|swallowed|taken|ingested|taking|swallowing) (?:about |around |approximately |over |nearly |"
        r"almost |roughly |some |up to |at least )?\d+ (?:x )?(?:(?:[\w-]+ ){0,4}(?:tablets|pills|capsules|tabs)|"
        rf"of (?:his|her|their|my|the) [\w-]+|(?:\d+ ?mg )?(?:{DRUG_NAMES}))",
    ),
    # Phrases that contain a target word but are about risk, safety or other people: matched to be ignored.
    "IGNORE": (
        r"\b(?:safe|safer|toxic|dangerous|lethal|fatal|risky) in overdose",
        r"\b(?:hypnagogic|hypnopompic) hallucinations?",
        r"\bmanic (?:week|day|time at work|schedule|pace|job|morning|weekend|rush)",
        r"(?<!fresh )(?<!new )(?<!recent )\bself[- ]?harm scars\b",
        r"\bscars from (?:old |previous |past )?self[- ]?harm\w*",
        r"\boverdose (?:risk|prevention|awareness|training|kit|deaths?|reversal|response)",
        r"\b(?:risk|risks|danger|dangers) of (?:an? )?(?:overdose|self[- ]harm|suicide|suicidal \w+)",
        r"\bin case of (?:an? )?overdose",
        r"\b(?:prevent|preventing|avoid|avoiding|reduce|reducing) (?:an? )?overdose",
        r"\b(?:suicide|suicidal|self[- ]harm) (?:risk(?: assessment)?|screening|screen|prevention|safety plan\w*|"
        r"helpline|crisis line|hotline|lifeline|assessment|questions?|item)",
        r"\b(?:died|death|deaths|dead|lost \w+) (?:by|from|of|to) (?:suicide|an overdose|overdose)",
        r"\bsuicide (?:of|by) (?:his|her|their) \w+",
        r"\bbereaved by suicide",
        r"\b(?:no one|nobody) (?:else )?(?:kill|hurt|harm)s?",
        r"\bconfus(?:ed|ion|ing) (?:about|over|by|as to) (?:which|what|how|whether|why|(?:her|his|their|the) "
        r"(?:medications?|tablets|dose|dosing|instructions|advice|guidance|options|diagnosis|results))",
        r"\bconfusing",
    ),
    # A positive self-harm item reported in the text (the instrument itself may be missing or malformed).
    "PHQ9_ITEM9_TEXT": (
        r"\b(?:(?:PHQ-?9 )?item 9 (?:(?:s?he|they) )?(?:was |is )?(?:scored|score of|scoring|rated|answered|at|=|:)?|"
        r"(?:scored|rated|answered) item 9) ?(?:as |at )?['‘\"]?"
        r"(?:[123]\b|several days|more than half|nearly every day)",
    ),
    "EPDS_ITEM10_TEXT": (
        r"\b(?:(?:EPDS )?item 10 (?:(?:s?he|they) )?(?:was |is )?(?:scored|score of|scoring|rated|answered|at|=|:)?|"
        r"(?:scored|rated|answered) item 10) ?(?:as |at )?['‘\"]?"
        r"(?:[123]\b|hardly ever|sometimes|quite often|yes,? quite often)",
    ),
    # Harm to others.
    "HI_THOUGHTS": (
        r"\bhomicidal(?: (?:ideation|thoughts?|urges|feelings))?",
        r"(?-i:\bHI\b)",
        r"\b(?:thoughts?|thinking|thought|urges?|fantas\w+|ideas?|impulses?) (?:of|about) "
        rf"(?:harming|hurting|killing|attacking|stabbing|shooting|strangling|smothering|drowning) {VICTIM}",
        rf"\b(?:wants?|wanted|wanting|urges? to|feels? like) (?:to )?{HARM_VERB} {VICTIM}",
        r"(?<=herself )(?:or|and) (?:others|other people)\b",
        r"(?<=himself )(?:or|and) (?:others|other people)\b",
        r"(?<=themselves )(?:or|and) (?:others|other people)\b",
    ),
    "HI_INTENT": (
        r"\bthreaten\w* (?:him|her|them|someone|people|(?:his|her|their|the) [\w-]+) with (?:a |an |the |his |her )?"
        r"(?:knife|gun|weapon|machete|hammer|bat|axe|crossbow)",
        r"\b(?:going|plans?|planning|planned|intends?|intending|intend|decided|will|'ll|gonna|threatened|"
        rf"threatening|threatens) to {HARM_VERB} {VICTIM}",
        r"\bhomicidal (?:intent|plans?|intention)",
    ),
    "WEAPON": (
        r"\b(?:guns?|firearms?|shotguns?|rifles?|pistols?|handguns?|knife|knives|machete|weapons?|crossbow|"
        r"ammunition)\b",
    ),
    "COMMAND_HALLUCINATION": (
        r"\b(?:voices?|someone|god|the devil|a man|a woman|they)(?: (?:that|which|who))? (?:is |are |keep |keeps )?"
        r"(?:telling|tell|tells|told|ordering|orders|ordered|commanding|commands|commanded|instructing|instructs|"
        r"urging|urges) (?:him|her|them|me) to "
        r"(?:kill|hurt|harm|attack|stab|shoot|jump|die|cut|burn|drown|hang|end|strangle|poison|punish|smother)",
        r"\bcommand(?:ing)? (?:auditory )?hallucinations?",
        r"\bcommands? to (?:kill|harm|hurt|attack)",
    ),
    # Psychosis.
    "HALLUCINATION": (
        r"\bhear(?:s|ing)? (?:a |the )?(?:[a-z]+ )?voices?\b",
        r"\bhear(?:s|ing)? things\b",
        r"\b(?:auditory|visual|tactile|olfactory) hallucinations?",
        r"\bhallucinat\w+",
        r"\b(?:seeing|sees|saw|see) (?:things|people|faces|figures|shadows) (?:that|which|who)? ?"
        r"(?:are not|aren't|were not|weren't|others can't|no one else|nobody else)",
        r"\b(?:seeing|sees|saw|see) (?:insects|bugs|spiders|snakes|rats|ants|animals)",
        r"\b(?:insects|bugs|spiders|ants|snakes|rats) (?:on|crawling|in) (?:the |his |her )?"
        r"(?:wall|walls|ceiling|skin|bed|room|floor)",
        r"\bpicking at (?:the )?(?:bed ?sheets?|air|bedclothes|covers|sheets)",
        r"\b(?:responding|reacting|talking) to (?:internal stimuli|voices|unseen \w+)",
    ),
    "DELUSION": (
        r"\b(?:paranoid|paranoia)(?: (?:thoughts|ideas|ideation|beliefs|delusions))?",
        r"\bdelusion(?:s|al)?(?: (?:beliefs?|ideas|thinking))?",
        r"\b(?:believes?|believed|convinced|certain|insists?|insisting) (?:that )?(?:[\w'-]+ ){0,6}"
        r"(?:is|are|has been|have been|was|were|had been) (?:poisoning|following|watching|spying on|monitoring|"
        r"tracking|plotting|controlling|reading (?:his|her|their) (?:mind|thoughts)|after (?:him|her|them)|"
        r"trying to (?:kill|poison|harm|hurt)|out to get|sending (?:him|her|them) (?:messages|signals)|"
        r"talking about (?:him|her|them))",
        r"\bsending (?:him|her|them) (?:secret |coded |special )?(?:messages|signals)",
        r"\bmessages (?:to (?:him|her|them) )?(?:through|from|on|in|via) the "
        r"(?:tv|television|news|radio|internet|newspapers?)",
        r"\bthoughts? (?:are |is |being )*(?:broadcast\w*|inserted|insertion|withdrawn|withdrawal|controlled)",
        r"\b(?:being|is being|are being) "
        r"(?:followed|watched|poisoned|monitored|spied on|controlled|tracked|persecuted)",
        r"\bspecial (?:powers|mission|messages)",
        r"\b(?:people|others|they|everyone) can (?:hear|read) (?:his|her|their) (?:thoughts|mind)",
        r"\bchosen by god|\bgod (?:is|has been) (?:talking|speaking) to (?:him|her|them)",
        r"\b(?:thinks|feels|convinced|believes|sure|certain|suspects?|suspicious) (?:that )?(?:the |his |her )?"
        r"(?:neighbours?|neighbors?|people|they|everyone|colleagues|strangers|others|police|government|family) "
        r"(?:are|is|have been|were) (?:talking about|watching|following|spying on|plotting|out to get|poisoning|"
        r"laughing at|monitoring|tracking)",
        r"\b(?:believes?|believed|convinced|certain|insists?|insisting|sure) (?:that )?(?:[\w'-]+ ){0,8}?"
        r"(?:poison\w*|tracking|tracked|microchip\w*|chip|implant\w*|spy\w*|spie[sd]|cameras?|bugged|hacked|"
        r"possessed|the devil|evil|impostors?|imposters?|replaced|conspir\w*|plotting|secret messages|signals|"
        r"reading (?:his|her|their) (?:mind|thoughts)|controlling (?:his|her|their) (?:mind|thoughts)|"
        r"special powers|chosen one|messiah)",
        r"\b(?:baby|child|son|daughter|husband|wife|partner) (?:is|has been|was|had been) "
        r"(?:swapped|switched|replaced|an impostor|an imposter|possessed|evil|the devil)",
        r"\b(?:grandiose|persecutory|bizarre) (?:delusions|beliefs|ideas)",
    ),
    "PSYCHOTIC": (
        r"\bpsychotic(?: (?:symptoms?|features|episode|experiences|depression|break|relapse))?",
        r"\bthought disorder(?:ed)?",
        r"\bdisorgani[sz]ed (?:speech|behaviou?r|thinking)",
        r"\bcatatoni\w+",
        r"(?-i:\bAVH\b)",
    ),
    # Mania and hypomania; one symptom alone is not enough (counted in code).
    "MANIA_EXPLICIT": (
        r"\b(?:hypo)?manic(?: (?:episode|symptoms|features|state|relapse|switch))?\b",
        r"\b(?:hypo)?mania\b",
    ),
    "MANIA_SX": (
        r"\bracing thoughts",
        r"\bthoughts (?:are |were )?racing",
        r"\bflight of ideas",
        r"\b(?:pressured|pressure of) speech",
        r"\b(?:talking|talks|talked|speaking|speech) (?:very |really |so )?"
        r"(?:fast|rapidly|quickly|non-?stop|constantly|incessantly)",
        r"\b(?:talking|talks|talked|speaking) over (?:people|others|everyone|colleagues)",
        r"\b(?:can't|cannot|couldn't) stop talking",
        r"\b(?:more|very|unusually|increasingly|excessively) talkative",
        r"\bjump(?:ing|s)? (?:between|from) (?:topics?|subjects?|one (?:topic|idea|subject))",
        r"\bgrandios\w+",
        r"\binflated self-esteem",
        r"\b(?:invincible|unstoppable|on top of the world|never felt better|supercharged|euphori\w+|elated|elation)",
        r"\belevated mood",
        r"\bmood (?:is )?(?:elevated|euphoric|elated)",
        r"\bspending spree\w*",
        r"\b(?:overspending|reckless spending|excessive spending|lavish spending|impulsive spending|"
        r"uncontrolled spending)",
        r"\b(?:spent|spending|maxed out|run up|ran up|racked up|running up) (?:several |many |thousands|hundreds|"
        r"huge|large|£|\$|a fortune|all (?:his|her|their) savings|(?:his|her|their) savings|credit cards?|"
        r"lots of money|a lot of money|money (?:s?he|they) (?:doesn't|does not|don't) have)",
        r"\bbooked (?:an? )?(?:expensive|lavish|extravagant|luxury) \w+",
        r"\bon credit\b",
        r"\b(?:started|starting|taken on|taking on|launched|launching|begun|began) (?:\w+ ){0,2}"
        r"(?:business(?:es)?|business plans|projects|ventures|companies|schemes)",
        r"\bincreased goal-directed activity",
        r"\b(?:full of|boundless|excessive|increased|lots of|bursting with) energy",
        r"\b(?:hyperactive|overactive)",
        r"\bhypersexual\w*",
        r"\bsexually disinhibited|\bdisinhibit\w+",
    ),
    # Reduced need for sleep (a mania feature), unlike insomnia, where the short night leaves the patient tired.
    "MANIA_SLEEP": (
        r"\b(?:decreased|reduced|little|less|no) need for sleep",
        r"\b(?:doesn't|does not|didn't|did not|don't) (?:need|feel the need for|seem to need) (?:much )?sleep",
        r"\b(?:slept|sleeping|sleeps|needed|needing|needs|getting|managing on|manages on) "
        r"(?:only |just |about |around )?"
        r"(?:\d+(?:[-–]\d+)?|one|two|three|four) hours?(?: of sleep)?(?: (?:a|per|each) night)?,? "
        r"(?:without|but not|and not|yet not|(?:and|but) (?:is not|isn't|is never)) (?:feeling |seeming )?"
        r"(?:tired|sleepy|fatigued)",
    ),
    # Sleep loss of any cause: supports postpartum psychosis, not mania on its own.
    "SLEEP_LOSS": (
        r"\b(?:barely|hardly) (?:slept|sleeping|sleeps)(?: (?:for|in) \w+ (?:nights|days))?",
        r"\b(?:hasn't|has not|haven't|had not|hadn't|not) slept (?:for|in) (?:\d+|two|three|four|five|several) "
        r"(?:nights|days)",
        r"\b(?:no|without) sleep for (?:\d+|\w+) (?:nights|days)",
        r"\bup all night",
    ),
    "DANGER_BEHAVIOUR": (
        r"\b(?:dangerous|reckless|erratic) driving",
        r"\bdriving (?:dangerously|recklessly|at high speed|at \d+ ?mph)",
        r"\baggressi\w+",
        r"\bviolen(?:t|ce)",
        r"\bassault\w*",
        r"\bthreaten\w*",
        r"\b(?:hit|punched|attacked|kicked) (?:someone|a |an |his |her |their |the )",
    ),
    # Drugs (and alcohol) as context for the toxidromes and withdrawal; classes are told apart in code.
    "DRUG": (rf"\b(?:{SEROTONERGIC}|{ANTIPSYCHOTIC}|{OPIOID}|{SEDATIVE}|{LITHIUM}|{ALCOHOL})\b",),
    # Context for postpartum psychosis.
    "POSTPARTUM": (
        r"\bpost-?partum",
        r"\bpost-?natal(?:ly)?",
        r"\bpuerper\w+",
        r"\b(?:gave birth|given birth|giving birth)",
        rf"\b{NUM_WORDS} (?:days?|weeks?) (?:after|since|following|post) (?:the |her |a |an )?"
        r"(?:birth|delivery|childbirth|giving birth|caesarean|c-section|(?:first |second |third |new )?baby)",
        r"\b(?:newborn|new baby)",
        r"\b(?:since|after|following) (?:the )?(?:birth|delivery|arrival) of (?:her|their|the) "
        r"(?:baby|son|daughter|twins|child|first child|second child)",
        rf"\b(?:birth|delivery|delivered|caesarean|c-section) {NUM_WORDS} (?:days?|weeks?) ago",
        r"\b\d+-(?:day|week)-old (?:baby|son|daughter|infant|twins)",
        r"\b(?:had|delivered) (?:a |her |their )?(?:baby|son|daughter|twins|first child|second child)\b",
    ),
    # Acute confusion: delirium until proven otherwise.
    "DELIRIUM": (
        r"\bdelirium\b(?! tremens)",
        r"\bdelirious",
        r"\b(?:acute|acutely|sudden|suddenly|new|newly|fluctuating|increasingly) (?:onset )?(?:of )?confus(?:ed|ion)\b",
        r"\bconfus(?:ed|ion) (?:that )?(?:comes and goes|fluctuates|fluctuating|worse at night)",
    ),
    "CONFUSION": (
        r"\bconfus(?:ed|ion)\b",
        r"\bdisorient(?:at)?(?:ed|ation)",
        r"\b(?:doesn't|does not|didn't|did not) know (?:where (?:s?he|they) (?:is|are|was|were)|what day|the date)",
        r"\bnot making sense",
    ),
    "DROWSY": (
        r"\bdrows(?:y|iness)",
        r"\b(?:sedated|obtunded)",
        r"\b(?:hard|difficult) to rouse",
        r"\breduced (?:level of )?consciousness",
    ),
    # Alcohol and sedative withdrawal.
    # Talk of withdrawal or detox: the setting for withdrawal seizures, hallucinations and delirium.
    "WITHDRAWAL_TALK": (
        r"\b(?:alcohol|sedative|benzodiazepine|benzo) withdrawal",
        r"\bwithdrawal (?:symptoms|syndrome|from alcohol|from benzodiazepines)",
        r"\bin withdrawal",
        r"\bdetox\w*",
    ),
    # Having just stopped: needed before tremor or sweating count as withdrawal (morning shakes are dependence).
    "WITHDRAWAL_CONTEXT": (
        r"\b(?:stopped|stopping|quit|quitting|ceased|cut down|cut back|reduced|stops)(?: \w+){0,2} "
        r"(?:drinking|alcohol|abruptly|suddenly|cold turkey|all at once|overnight)",
        rf"\b(?:stopped|stopping|quit|quitting|ran out of|run out of|running out of) (?:taking )?"
        rf"(?:his |her |their |the )?(?:\w+ )?(?:{SEDATIVE})",
        r"\b(?:ran|run|running) out of (?:money|alcohol|drink|booze|vodka|cash)",
        rf"\b(?:stopped|stopping|quit|quitting) (?:drinking |alcohol |it |abruptly |suddenly |completely )?"
        rf"{NUM_WORDS} days ago",
        r"\b(?:since|after) stopping\b",
        r"\blast drink",
        r"\b(?:hasn't|has not|haven't|not) (?:had )?(?:a |any )?drinks? (?:for|since|in)",
        r"\b(?:no|without) (?:alcohol|a drink|drink) (?:for|since)",
    ),
    "WITHDRAWAL_SEVERE": (
        r"\bwithdrawal (?:seizures?|fits?|convulsions?|delirium)",
        r"\b(?:alcohol[- ]related|alcohol withdrawal) (?:seizures?|fits?|delirium)",
        r"\bdelirium tremens",
        r"(?-i:\bDTs\b)",
    ),
    "SEIZURE": (
        r"\b(?:seizures?|convuls\w+|tonic[- ]clonic|grand mal)\b",
        r"\b(?:a|had|having|another|first|several|two|three|multiple) (?:\w+ )?fits?\b"
        r"(?! (?:and well|young|person|man|woman|for|into|in with))",
        r"\bfitting\b",
    ),
    "TREMOR": (r"\btremors?\b", r"\btremulous\w*", r"\bshak(?:y|ing|es)\b"),
    "COARSE_TREMOR": (r"\bcoarse tremors?",),
    "ATAXIA": (
        r"\bataxi[ac]\b",
        r"\bunsteady(?: on (?:his|her|their) feet| gait| walking)?",
        r"\b(?:wide-based|broad-based|staggering) gait",
        r"\bstaggering",
        r"\b(?:off|losing|lost) (?:his|her|their) balance",
    ),
    "SLURRED_SPEECH": (r"\bslurr(?:ed|ing)(?: speech| (?:his|her|their) words)?", r"\bdysarthri\w+"),
    "GI_UPSET": (r"\bvomit\w*", r"\bdiarrh?o?ea\w*", r"\bbeing sick\b"),
    "MYOCLONUS": (r"\bmyoclon\w+", r"\bmuscle twitch\w*", r"\btwitching"),
    # Serotonin syndrome and neuroleptic malignant syndrome.
    "CLONUS": (r"\b(?:inducible |ocular |spontaneous |ankle |sustained )?clonus",),
    "HYPERREFLEXIA": (
        r"\bhyper-?reflexi\w+",
        r"\bbrisk reflexes",
        r"\b(?:increased|exaggerated|brisk) (?:tendon )?reflexes",
    ),
    "FEVER": (r"\bfever\w*", r"\bfebrile", r"\bpyrexi\w+", r"\bhyperthermi\w+", r"\bhigh temperature"),
    "RIGIDITY": (
        r"\brigid(?:ity)?\b",
        r"\bstiff(?:ness)?\b(?! neck)",
        r"\blead[- ]pipe",
        r"\bhypertoni\w+",
    ),
    "AUTONOMIC": (
        r"\blabile (?:BP|blood pressure)",
        r"\b(?:BP|blood pressure) (?:\d+/\d+ )?(?:and |is |was )?labile",
        r"\bautonomic (?:instability|dysfunction)",
        r"\bdiaphore\w+",
        r"\bsweat(?:y|ing|s)\b",
        r"\btachycardi\w+",
    ),
    "CK_RAISED": (
        r"(?-i:\bCK\b)[^.;]{0,15}(?:raised|elevated|high|\d{4,}|\d{1,3},\d{3})",
        r"\b(?:raised|elevated|high) (?:CK|creatine kinase)",
    ),
    # Opioid overdose.
    "OVERDOSE_SIGN": (
        r"\bunresponsive",
        r"\bunrousable",
        r"\b(?:couldn't|could not|can't|cannot) (?:be )?(?:woken|wake (?:him|her|them)|rouse (?:him|her|them))",
        r"\bpinpoint pupils",
        r"\b(?:slow|slowed|shallow|laboured|labored|agonal) breathing",
        r"\brespiratory depression",
        r"\b(?:stopped|not) breathing",
        r"\b(?:turned|went|lips (?:were |went |turned )?)blue",
        r"\bcyanos\w+",
        r"\b(?:needed|given|gave (?:him|her|them)|required|received|administered|used) (?:\w+ )?naloxone",
        r"\bnaloxone (?:was )?(?:given|administered|used)",
        r"\brevived (?:with|by)",
    ),
    # Eating disorders and medical instability.
    "EATING_DISORDER": (
        r"\banorexi\w+",
        r"\bbulimi\w+",
        r"\beating disorders?",
        r"\bARFID\b",
        r"\brestrict\w* (?:her |his |their )?(?:eating|food|intake|diet|calories)",
        r"\bpurg(?:e|es|ed|ing)\b",
        r"\bself-induced vomiting",
        rf"\b(?:making|makes|made) {SELF} sick",
        r"\blaxative (?:misuse|abuse)",
        r"\b(?:misusing|abusing|taking) laxatives",
        r"\bbinge[- ]eat\w*",
        r"\bbingeing",
    ),
    "SYNCOPE": (
        r"\bfaint(?:ed|ing|s)?\b",
        r"\bsyncop\w+",
        r"\bcollaps(?:ed|ing|es)\b",
        r"\bpassed out",
        r"\bblack(?:ed)? ?outs?\b",
    ),
    "ED_INSTABILITY": (
        r"\bbradycardi\w+",
        r"\bhypokal(?:a)?emi\w+",
        r"\bhypoglyc(?:a)?emi\w+",
        r"\b(?:prolonged QTc?|QTc? prolong\w+)",
        r"\barrhythmi\w+",
        r"\bpostural (?:drop|hypotension)",
        r"\brefus\w+ (?:all )?(?:fluids|to drink)",
    ),
    # Numeric findings; the value is checked in code.
    "HEART_RATE": (
        r"\b(?:HR|heart rate|pulse(?: rate)?)\s*(?:of|was|is|:|=)?\s*\d{2,3}\b",
        r"\b\d{2,3}\s*(?:bpm|beats per minute|beats/min)",
    ),
    "TEMPERATURE": (
        r"(?:\btemp(?:erature)?\.?|(?-i:\bT))\s*(?:of|was|is|:|=)?\s*\d{2}(?:\.\d)?\s*(?:°\s*C?|degrees(?: C)?)?",
        r"\b\d{2}\.\d\s*°\s*C?",
    ),
    "POTASSIUM": (r"(?:\bpotassium|(?-i:\bK\+?))\s*(?:of|was|is|:|=)?\s*\d(?:\.\d+)?\b",),
    "LITHIUM_LEVEL": (
        r"(?-i:\bLi\b)\s*(?:of|was|is|:|=)?\s*\d\.\d+",
        r"\bserum lithium\s*(?:of|was|is|:|=)?\s*\d(?:\.\d+)?\b",
        r"\b(?:lithium|(?-i:Li)) (?:level|concentration)s?\s*(?:of|was|is|:|=)?\s*\d(?:\.\d+)?\b",
    ),
    "BMI": (r"(?-i:\bBMI)\s*(?:of|was|is|:|=)?\s*\d{1,2}(?:\.\d)?\b",),
    "BLOOD_PRESSURE": (r"\b(?:BP|blood pressure)\s*(?:of|was|is|:|=)?\s*\d{2,3}/\d{2,3}",),
}

# --- ConText modifiers -------------------------------------------------------------------------------------

# Each rule: (pattern, category, direction, options). Options: max_scope (tokens); clause_bound (the modifier
# stops at a new clause, see app.triage._same_clause); person_bound (it stops where the text turns back to the
# patient: "her father had ... and she hears"). Our own categories: CURRENT ends a HISTORICAL scope ("history of
# self-harm, cut herself last week"); CLAUSE (a new statement) ends negation, history and other-person scopes;
# CHRONIC marks a long-standing symptom that is not new. app.triage wires these terminations up.
ContextSpec = tuple[str | list[dict], str, str, dict]

CONTEXT_RULES: tuple[ContextSpec, ...] = (
    # Negation.
    (r"\b(?:denies|deny|denying)\b|\bdenied\b(?!\s*(?:[.,;)]|$))", "NEGATED_EXISTENCE", "FORWARD", {}),
    (
        r"\b(?:was|were|is|are|has been|have been|had been) (?:\w+ )?denied\b",
        "NEGATED_EXISTENCE",
        "BACKWARD",
        {"max_scope": 6},
    ),
    (r"\bdenied(?=\s*[.,;)]|\s*$)", "NEGATED_EXISTENCE", "BACKWARD", {"max_scope": 5}),
    (r"\b(?:no|nil)\b", "NEGATED_EXISTENCE", "FORWARD", {"max_scope": 6, "clause_bound": True}),
    (
        r"(?:\bnot|n't)\b(?: (?:have|had|has|feel|felt|report|reported|describe|experience|experienced|been|any))?",
        "NEGATED_EXISTENCE",
        "FORWARD",
        {"max_scope": 4, "clause_bound": True},
    ),
    (
        r"\bnever\b(?: (?:had|have|has|been|experienced|felt|reported))?",
        "NEGATED_EXISTENCE",
        "FORWARD",
        {"max_scope": 5, "clause_bound": True},
    ),
    (
        r"\b(?:without|free of|negative for|absence of|lack of|nor|neither)\b",
        "NEGATED_EXISTENCE",
        "FORWARD",
        {"max_scope": 5, "clause_bound": True},
    ),
    (
        r"\b(?:no|not any) (?:evidence|history|signs?|symptoms|features|suggestion|reports?|indication) "
        r"(?:of|for|that)\b",
        "NEGATED_EXISTENCE",
        "FORWARD",
        {},
    ),
    (
        r"\b(?:no longer|no further|no current|no active|no recent|not currently|rules? out|ruled out|rather than)\b",
        "NEGATED_EXISTENCE",
        "FORWARD",
        {"max_scope": 6},
    ),
    (r"\b(?:said|says|answered|answers|answering) no to\b", "NEGATED_EXISTENCE", "FORWARD", {"max_scope": 8}),
    (r"[:\-–] ?(?:none|no|nil|negative|denied)(?=\s*(?:[.,;)]|$))", "NEGATED_EXISTENCE", "BACKWARD", {"max_scope": 5}),
    (r"\b(?:none reported|not present|absent|resolved)\b", "NEGATED_EXISTENCE", "BACKWARD", {"max_scope": 5}),
    # Phrases with a negation word that negate nothing after them.
    # A token pattern, not a regex: it also keeps ConText's spaCy Matcher non-empty (spaCy warns W036 on every call
    # to an empty Matcher).
    ([{"LOWER": "no"}, {"LOWER": "one"}], "PSEUDO", "PSEUDO", {}),
    (r"\bnobody\b", "PSEUDO", "PSEUDO", {}),
    (
        r"\b(?:not|no) (?:only|just|sure|coping|sleeping|eating|working|attending|going out|taking|improving|"
        r"improved|better|change|doubt|matter|relief|response|longer working)\b",
        "PSEUDO",
        "PSEUDO",
        {},
    ),
    (
        r"\b(?:can't|cannot|couldn't|could not|can not|unable to|not able to) (?:stop|get rid of|shake|switch off)\b",
        "PSEUDO",
        "PSEUDO",
        {},
    ),
    (r"\bnot (?:feeling )?(?:tired|sleepy)\b", "PSEUDO", "PSEUDO", {}),
    # History.
    (
        r"\b(?:history|hx|background) of\b|\bh/o\b|\b(?:history|hx|pmh|pph|background)\s*:",
        "HISTORICAL",
        "FORWARD",
        {},
    ),
    (r"\b(?:history|hx)\b(?! of)", "HISTORICAL", "BACKWARD", {"max_scope": 3}),  # "his overdose history"
    (
        r"\b(?:previous(?:ly)?|prior|past|remote|former)\b|(?<!-)(?<!year )(?<!years )\bold\b",
        "HISTORICAL",
        "FORWARD",
        {"max_scope": 3},
    ),
    (r"\bin the past\b", "HISTORICAL", "BIDIRECTIONAL", {"max_scope": 6}),
    (r"\bused to\b", "HISTORICAL", "FORWARD", {"max_scope": 5}),
    (
        r"\b(?:\d+|a|one|two|three|four|five|six|seven|eight|nine|ten|twenty|several|many|a few|some|few) "
        r"(?:years?|decades?) (?:ago|earlier|before|previously)\b",
        "HISTORICAL",
        "BIDIRECTIONAL",
        {"max_scope": 10},
    ),
    (
        r"\b(?:[4-9]|1[0-9]|\d{3,}|four|five|six|seven|eight|nine|ten|eleven|twelve|eighteen|several|many) "
        r"months? (?:ago|earlier|before|previously)\b",
        "HISTORICAL",
        "BIDIRECTIONAL",
        {"max_scope": 10},
    ),
    (
        r"\b(?:last|the previous|the year before) year\b|\byears ago\b|\blong ago\b",
        "HISTORICAL",
        "BIDIRECTIONAL",
        {"max_scope": 10},
    ),
    (r"\bin (?:19|20)\d\d\b", "HISTORICAL", "BIDIRECTIONAL", {"max_scope": 10}),
    (
        r"\bat (?:the )?(?:age (?:of )?)?(?:1[0-9]|[2-9][0-9])\b"
        r"(?! ?(?:mg|am|pm|weeks?|days?|hours?|o'clock|%|units?|kg|mmol|bpm|:|\.|-|years? old))",
        "HISTORICAL",
        "BIDIRECTIONAL",
        {"max_scope": 8},
    ),
    (
        r"\bas a (?:teenager|teen|child|student|young (?:man|woman|adult)|youngster|kid|adolescent|"
        r"schoolgirl|schoolboy)\b",
        "HISTORICAL",
        "BIDIRECTIONAL",
        {"max_scope": 10},
    ),
    (
        r"\bin (?:his|her|their|my) (?:teens|twenties|thirties|forties|fifties|youth|\d0s)\b",
        "HISTORICAL",
        "BIDIRECTIONAL",
        {"max_scope": 10},
    ),
    (
        r"\bwhen (?:s?he|they|I) (?:was|were) (?:a |an |at )?(?:teenager|younger|\d+|school|university|college|student|"
        r"child|kid|adolescent|in (?:school|university|college))\b",
        "HISTORICAL",
        "BIDIRECTIONAL",
        {"max_scope": 10},
    ),
    (
        # The leading ";" is part of the match so that "overdose aged 15; none since" is not cut at the semicolon.
        r"(?:;\s*)?\b(?:none|nothing|no (?:further )?\w+|not) since\b|\bsince then\b|\bnever again\b",
        "HISTORICAL",
        "BACKWARD",
        {},
    ),
    # "attempted suicide aged 15" (backward only: "a woman aged 45 took an overdose last night" is current).
    (r"\baged (?:[1-9][0-9])\b", "HISTORICAL", "BACKWARD", {"max_scope": 6}),
    # Now, to end a HISTORICAL scope.
    (
        r"\b(?:now|currently|current|today|tonight|yesterday|recent(?:ly)?|lately|again|ongoing|still|at present|"
        r"right now|this (?:morning|afternoon|evening|week|weekend|month)|last (?:night|week|weekend|few days)|"
        r"(?:\d+|one|two|three|four|five|six|a few|few|a couple of|several) (?:days?|weeks?|hours?) ago|"
        r"(?:in the )?(?:past|last) (?:\d+ |few |two |three |several |couple of )?"
        r"(?:hours|days?|weeks?|fortnight|months?)|"
        r"since (?:yesterday|last week|the weekend))\b",
        "CURRENT",
        "PSEUDO",
        {},
    ),
    # Hypotheticals and questions about what to watch for.
    (
        r"\b(?:if|unless|whether|in case(?: of)?|in the event (?:of|that)|what if|should (?:s?he|they|the patient))\b",
        "HYPOTHETICAL",
        "FORWARD",
        {},
    ),
    (r"\b(?:might|(?-i:may)|could|can cause|can lead to|can trigger)\b", "HYPOTHETICAL", "FORWARD", {"max_scope": 6}),
    (
        r"\b(?:can|could|does|do|will|would|might|may) (?:[\w-]+ ){0,3}(?:cause|trigger|induce|lead to)\b",
        "HYPOTHETICAL",
        "FORWARD",
        {"max_scope": 6},
    ),
    (
        r"\b(?:worri\w*|concern\w*|afraid|scared|frightened|anxious|fears?|fearful) (?:about|of|that) "
        r"(?:s?he |they |I )?(?:becoming|developing|getting|going to|will|might|may|could|would)\b",
        "HYPOTHETICAL",
        "FORWARD",
        {"max_scope": 6},
    ),
    # A question about a diagnosis ("Is this hypomania?", "Does he have psychotic symptoms?") asserts nothing; only
    # at the start of a sentence, since "the worry is she has been hearing voices" asserts.
    (
        r"(?:^|(?<=[.?!:] ))(?:is|are|could|might|can|does|do) (?:this|it|he|she|they)\b(?: (?:be|have|has|having))?",
        "HYPOTHETICAL",
        "FORWARD",
        {"max_scope": 6},
    ),
    (
        r"\b(?:in the future|would ever|ever (?:became|becomes|become|felt|feels|feel))\b",
        "HYPOTHETICAL",
        "BIDIRECTIONAL",
        {"max_scope": 5},
    ),
    (
        r"\b(?:risks? of|at risk of|prevent(?:ing|ion of)?|to avoid|watch(?: out)? for|look(?: out)? for|"
        r"monitor(?:ing)? for|"
        r"warning signs(?: of)?|warnings? (?:about|of)|screen(?:ed|ing)? for|assess(?:ing|ment of)? for|"
        r"how (?:to|do I|should I) "
        r"(?:assess|ask about|manage|screen for|respond to)|ask(?:ing)? about|what to do about|advice (?:on|about)|"
        r"counsel\w* (?:on|about)|educat\w* (?:on|about)|safety[- ]net\w*)\b",
        "HYPOTHETICAL",
        "FORWARD",
        {"max_scope": 10},
    ),
    # Someone else: a relative or friend as the subject ("her mother has", "his brother attempted").
    # Only the relative is the modifier (the verb may be part of the target: "her father attempted suicide").
    (
        rf"\b(?:{RELATIVE})(?:'s)?(?= (?:(?:has|had|have|was|is)(?! (?:noticed|been (?:worried|concerned|noticing)|"
        r"observed|seen|found|reported|said|told|called|rang|phoned|brought|asked|worried|concerned|scared|"
        r"frightened|here|present))|died|killed|committed|attempted|tried|took|suffers|suffered|hanged|hung|"
        r"overdosed|self-harm\w*|developed|became|cuts|cut)\b)",
        "FAMILY",
        "FORWARD",
        {"max_scope": 8, "person_bound": True},
    ),
    (
        r"\b(?:family history|fhx|fh) (?:of|includes)?|\bruns in the family\b",
        "FAMILY",
        "BIDIRECTIONAL",
        {"max_scope": 8},
    ),
    (rf"\bwhose (?:{RELATIVE})\b", "FAMILY", "FORWARD", {"max_scope": 8}),
    # Long-standing, unchanged symptoms (not "new").
    (
        r"\b(?:long-?standing|chronic|unchanged|for (?:many )?years|residual|as usual)\b",
        "CHRONIC",
        "BIDIRECTIONAL",
        {"max_scope": 8},
    ),
    # Clause breaks that end every modifier's scope.
    (
        r"\b(?:but|however|although|though|yet|except|apart from|aside from|then|whereas|while|whilst)\b|;",
        "TERMINATE",
        "TERMINATE",
        {},
    ),
    # A new statement: ends negation, history and other-person scopes, but not a hypothetical ("what if she says").
    (
        r"\b(?:says|said|reports|reported|admits|admitted|describes|described|disclosed|discloses|endorses|endorsed|"
        r"acknowledges|acknowledged|tells|told (?:me|us|her|him|the))\b",
        "CLAUSE",
        "PSEUDO",
        {},
    ),
    (
        r"\band (?:(?:s?he|they) (?:has|have|is|are|was|were|reports|says|admits|describes|endorses|disclosed|now|"
        r"then|also|recently|started|began|feels|thinks|wants|hears|sees)|now|then|also|recently)\b",
        "CLAUSE",
        "PSEUDO",
        {},
    ),
)

# Pronouns that bring the text back to the patient after a relative was the subject.
PATIENT_SUBJECTS = frozenset({"she", "he", "they", "patient", "i"})

# Words that open a new clause: a clause-bound negation ("no appetite, thinks about dying") stops before them.
CLAUSE_OPENERS = frozenset(
    {
        "she", "he", "they", "i", "patient", "has", "have", "had", "is", "was", "are", "were", "says", "said",
        "reports", "reported", "admits", "admitted", "feels", "thinks", "wants", "hears", "sees", "describes",
        "endorses", "now", "then", "also", "wishes", "believes", "keeps", "started",
    }
)  # fmt: skip
