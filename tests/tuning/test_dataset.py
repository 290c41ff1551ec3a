"""The tuning data: deterministic, split by document, faithful references, the consult pipeline's own prompts."""

from __future__ import annotations

import json
import re

import pytest

from app.verification import check, cited_numbers
from tuning.dataset import (
    SPLITS,
    DatasetError,
    build_dataset,
    canonical_jsonl,
    import_user_dataset,
    load_records,
    load_seed_cases,
    sha256_bytes,
    stratified,
    write_dataset,
)
from tuning.questions import ABSTENTION


def _excerpts(user: str) -> dict[int, str]:
    """The numbered excerpt blocks of a prompt, by number."""
    body = user.split("Guideline excerpts:\n", 1)[1].split("\n\nPatient: ", 1)[0]
    blocks = re.split(r"(?:^|\n\n)\[(\d+)\] ", "\n\n" + body)
    return {int(blocks[i]): blocks[i + 1] for i in range(1, len(blocks) - 1, 2)}


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not(small_corpus, small_config, small_dataset,
                                                                       tmp_path):
    from dataclasses import replace

    again, _ = build_dataset(small_corpus, load_seed_cases(), small_config)
    first, manifest = small_dataset
    assert all(canonical_jsonl(first[s]) == canonical_jsonl(again[s]) for s in SPLITS)
    other, _ = build_dataset(small_corpus, load_seed_cases(), replace(small_config, seed=4))
    assert canonical_jsonl(other["train"]) != canonical_jsonl(first["train"])

    written = write_dataset(tmp_path, first, manifest)
    for split in SPLITS:
        data = (tmp_path / f"{split}.jsonl").read_bytes()
        assert written["splits"][split]["sha256"] == sha256_bytes(data)
        assert written["splits"][split]["examples"] == len(first[split]) > 0
    assert json.loads((tmp_path / "manifest.json").read_text())["sha256"] == written["sha256"]


def test_splits_hold_disjoint_documents_and_no_test_text_reaches_training(small_dataset):
    splits, manifest = small_dataset
    docs = manifest["documents"]
    assert not set(docs["train"]) & set(docs["test"]) and not set(docs["validation"]) & set(docs["test"])
    assert not set(docs["train"]) & set(docs["validation"])
    for split in SPLITS:
        for record in splits[split]:
            assert {c.split("#")[0] for c in record["meta"]["chunk_ids"]} <= set(docs[split]), record["meta"]
    train_prompts = "\n".join(r["messages"][1]["content"] for r in splits["train"])
    for record in splits["test"]:
        for sentence in re.split(r" \[\d+\]\.? ?", record["messages"][-1]["content"]):
            if len(sentence) > 40 and not sentence.startswith("Urgency is"):
                assert sentence not in train_prompts


def test_every_kind_is_generated_with_a_faithful_reference(small_dataset):
    splits, _ = small_dataset
    records = [r for s in SPLITS for r in splits[s]]
    kinds = {r["meta"]["kind"] for r in records}
    assert {"statement", "section", "no_answer", "emergency", "urgent"} <= kinds
    positions = set()
    for record in records:
        answer = record["messages"][-1]["content"]
        excerpts = _excerpts(record["messages"][1]["content"])
        assert len(excerpts) == 4
        if record["meta"]["kind"] == "no_answer":
            assert answer == ABSTENTION and not cited_numbers(answer)
            continue
        assert check(answer, len(excerpts)).reason is None  # the app would show it as written
        for sentence, n in re.findall(r"([^\[]+?) \[(\d+)\]\.", answer):
            if not sentence.strip().startswith(("Urgency is", "Do not leave", "Arrange", "Assess")):
                quoted = sentence.strip().rstrip(".")
                assert quoted[:60] in " ".join(excerpts[int(n)].split()), (quoted, n)
        positions.update(cited_numbers(answer))
        if record["meta"]["kind"] in ("emergency", "urgent"):
            assert answer.startswith(f"Urgency is {record['meta']['kind'].upper()}.")
            assert f"Urgency: {record['meta']['kind'].upper()}" in record["messages"][1]["content"]
    assert positions == {1, 2, 3, 4}  # the correct excerpt's position is shuffled


def test_prompts_are_exactly_what_the_consult_pipeline_sends(small_dataset, small_corpus):
    from app.consult import ConsultConfig, ConsultPipeline
    from retrieval.store import SearchHit

    passages = {p.chunk_id: p for d in small_corpus for p in d.passages}
    splits, _ = small_dataset
    for kind in ("statement", "no_answer", "emergency"):
        record = next(r for r in splits["train"] if r["meta"]["kind"] == kind)
        hits = [SearchHit(chunk_id=i, doc_id=passages[c].doc_id, title=passages[c].title, topic=passages[c].topic,
                          source="s", version="1", section=passages[c].section, page=None, start=0, end=1,
                          text=passages[c].text, score=1.0) for i, c in enumerate(record["meta"]["chunk_ids"])]

        class Store:
            def __init__(self, hits):
                self.hits = hits

            def search(self, query, k=5, topics=None, doc_ids=None, mode="hybrid"):
                return [] if topics else self.hits[:k]  # no steered hits: the general search order stands

        class Chat:
            sent = None

            def stream(self, messages):
                Chat.sent = messages
                return iter(())

        result = ConsultPipeline(Store(hits), ConsultConfig(), chat_model=Chat()).run(dict(record["meta"]["case"]))
        assert Chat.sent == record["messages"][:2]
        assert result["urgency"] == ("emergency" if kind == "emergency" else "routine")


def test_a_bad_user_file_is_refused_naming_each_line_and_problem(tmp_path):
    good = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                         {"role": "assistant", "content": "a [1]."}]}
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps({"messages": [{"role": "bot", "content": "x"}, {"role": "assistant", "content": "a"}]}),
        json.dumps({"messages": [{"role": "user", "content": "q"}]}),
        json.dumps({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}),
        json.dumps({"prompt": "q", "messages": [{"role": "user", "content": "q"},
                                                 {"role": "assistant", "content": "a"}]}),
        json.dumps([1, 2]),
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as e:
        load_records(path)
    message = str(e.value)
    assert f"{path}:2: invalid JSON" in message
    assert f"{path}:3: messages[0].role must be one of system, user, assistant, got 'bot'" in message
    assert f"{path}:4: the last message must be the assistant's answer, got user" in message
    assert f"{path}:5: messages[0].content is empty" in message
    assert f"{path}:6: unknown key(s) ['prompt']" in message
    assert f"{path}:7: expected a JSON object, got list" in message
    assert ":1:" not in message
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DatasetError, match="no records"):
        load_records(empty)


def test_a_valid_user_file_is_split_by_document_and_hashed(tmp_path):
    records = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i} [1]."}],
                "meta": {"doc_id": f"doc-{i % 5}"}} for i in range(40)]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    manifest = import_user_dataset(path, tmp_path / "out", seed=1)
    assert sum(m["examples"] for m in manifest["splits"].values()) == 40
    docs = {s: {json.loads(line)["meta"]["doc_id"] for line in (tmp_path / "out" / f"{s}.jsonl").open()}
            for s in SPLITS}
    assert not docs["train"] & docs["test"] and not docs["train"] & docs["validation"]
    assert manifest == import_user_dataset(path, tmp_path / "again", seed=1)


def test_stratified_subsets_keep_every_kind_in_proportion(small_dataset):
    splits, _ = small_dataset
    records = splits["train"]
    subset = stratified(records, 20, seed=0)
    assert len(subset) == 20 and subset == stratified(records, 20, seed=0)
    assert {r["meta"]["kind"] for r in subset} == {r["meta"]["kind"] for r in records}


# --- consult examples -------------------------------------------------------------------------------------


def _passage(doc_id: str, n: int, statements: tuple[str, ...]):
    from tuning.corpus import Passage

    text = "\n".join(f"- {s}" for s in statements)
    return Passage(chunk_id=f"{doc_id}#{n}", doc_id=doc_id, title=doc_id, topic=doc_id, section="", text=text,
                   visible=text, statements=statements)


def test_a_consult_answer_quotes_from_each_excerpt_the_statement_closest_to_question_and_patient():
    from tuning.dataset import DataConfig, consult_answer

    first = _passage("a", 0, ("Lithium levels are checked every three months.",
                              "Offer guided self-help for mild depression in adults."))
    unrelated = _passage("c", 2, ("Clozapine needs regular blood counts.",))
    second = _passage("b", 1, ("Offer guided self-help for mild depression in adults.",  # repeated by the overlap
                               "Review mild depression within two weeks of starting guided self-help."))
    question, patient = "Is guided self-help reasonable?", "Adult with mild depression since the spring."
    answer = consult_answer(question, patient, [first, unrelated, second], DataConfig())
    assert answer == [("Offer guided self-help for mild depression in adults.", first),
                      ("Review mild depression within two weeks of starting guided self-help.", second)]
    assert consult_answer(question, patient, [first, second], DataConfig(consult_statements=1)) == answer[:1]
    assert consult_answer(question, patient, [first, second], DataConfig(consult_answer_words=12)) == answer[:1]
    assert consult_answer("Anything?", "Nothing in common.", [first], DataConfig()) == []


def test_consult_vignettes_become_examples_in_the_split_of_their_topic_over_that_splits_retrieval(
        small_corpus, small_config):
    vignettes = [
        {"topic": "insomnia", "patient": {"age": 50, "sex": "male"},
         "presentation": "50-year-old with chronic insomnia for a year, waking at 3 am; no mood symptoms.",
         "questions": ["What should I try before a sleeping tablet?", "Is zolpidem reasonable?"]},
        {"topic": "depression", "patient": {"age": 40},
         "presentation": "40-year-old with low mood who plans to overdose on his tablets tonight.",
         "questions": ["What should I start?"]},
        {"topic": "ptsd", "presentation": "Not in the small corpus.", "questions": ["What helps?"]},
    ]
    calls = []

    def retriever(case, doc_ids):
        calls.append((case["question"], doc_ids))
        pool = [p for d in small_corpus if d.doc_id in doc_ids for p in d.passages]
        return pool[:4]

    splits, manifest = build_dataset(small_corpus, load_seed_cases(), small_config, vignettes, retriever)
    consult = {s: [r for r in splits[s] if r["meta"]["kind"] == "consult"] for s in SPLITS}
    insomnia_split = next(s for s in SPLITS if "insomnia-cbti" in manifest["documents"][s])
    assert sorted(r["meta"]["case"]["question"] for r in consult[insomnia_split]) == [
        "Is zolpidem reasonable?", "What should I try before a sleeping tablet?"]
    assert sum(len(v) for v in consult.values()) == 2  # the flagged one is dropped, the missing topic skipped
    assert any("consult (depression): triage gave emergency" in d for d in manifest["dropped"])
    for _, doc_ids in calls:
        assert sorted(doc_ids) == manifest["documents"][insomnia_split]  # never another split's text
    for record in consult[insomnia_split]:
        retrieved = [p.chunk_id for d in small_corpus if d.doc_id in manifest["documents"][insomnia_split]
                     for p in d.passages][:4]
        assert record["meta"]["chunk_ids"] == retrieved
        answer = record["messages"][-1]["content"]
        assert check(answer, 4).reason is None
        assert 1 <= len(cited_numbers(answer)) and len(re.findall(r"\[\d\]", answer)) <= 6


def test_a_built_data_directory_is_used_as_built_and_an_edited_one_is_refused(small_dataset, tmp_path):
    from tuning.dataset import copy_dataset

    splits, manifest = small_dataset
    written = write_dataset(tmp_path / "built", splits, manifest)
    copied = copy_dataset(tmp_path / "built", tmp_path / "run" / "data")
    assert copied["sha256"] == written["sha256"]
    for split in SPLITS:
        assert (tmp_path / "run" / "data" / f"{split}.jsonl").read_bytes() == canonical_jsonl(splits[split])
    edited = tmp_path / "built" / "validation.jsonl"
    edited.write_bytes(edited.read_bytes().replace(b"NICE", b"NIC", 1))
    with pytest.raises(DatasetError, match=r"validation\.jsonl: sha256 differs"):
        copy_dataset(tmp_path / "built", tmp_path / "again")
    assert not (tmp_path / "again").exists()  # nothing half-copied
    with pytest.raises(DatasetError, match="not a tuning data directory"):
        copy_dataset(tmp_path / "nowhere", tmp_path / "again")


def test_the_data_hash_does_not_depend_on_the_process_string_hash_seed(minilm_dir):
    """Sets iterate in an order set by PYTHONHASHSEED; nothing built from them may change the bytes. (Summing
    idf weights in set order once broke a near-tie differently under seeds 1, 2 and 3 on the bundled corpus.)"""
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from retrieval.ingest import bundled_guideline_paths\n"
        "from tuning.corpus import load_corpus\n"
        "from tuning.dataset import DataConfig, build_dataset, canonical_jsonl, load_seed_cases, sha256_bytes\n"
        "docs = load_corpus(bundled_guideline_paths(), Path(sys.argv[1]))\n"
        "splits, _ = build_dataset(docs, load_seed_cases(), DataConfig())\n"
        "print(sha256_bytes(b''.join(canonical_jsonl(splits[s]) for s in ('train', 'validation', 'test'))))\n"
    )
    digests = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, "-c", script, str(minilm_dir)], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "PYTHONHASHSEED": seed})
        assert done.returncode == 0, done.stderr[-2000:]
        digests.add(done.stdout.strip().splitlines()[-1])
    assert len(digests) == 1


def test_consult_cases_without_a_retriever_are_refused(small_corpus, small_config):
    vignette = {"topic": "insomnia", "presentation": "Chronic insomnia.", "questions": ["What should I try?"]}
    with pytest.raises(DatasetError, match="consult cases need a retriever"):
        build_dataset(small_corpus, load_seed_cases(), small_config, [vignette])


def test_an_example_whose_answer_the_focused_excerpt_hides_is_named():
    from tuning.dataset import Example, hidden_statements

    filler = tuple(f"Withdrawal scale item {i} scores sweating and restlessness from 0 to 4 points." for i in range(10))
    answer = "Buprenorphine can be started in primary care once withdrawal is at least mild."
    passage = _passage("opioids", 0, (*filler, answer))
    case = {"presentation": "Man, 34.", "question": "Can we start buprenorphine here?"}
    asked = Example("statement", "opioids", "opioids", case["question"], case, [passage], [(answer, passage)])
    assert hidden_statements(asked) == []  # beyond the first 600 characters, but what the question asks about
    other = {**case, "question": "How is the withdrawal scale item scored?"}
    unasked = Example("statement", "opioids", "opioids", other["question"], other, [passage], [(answer, passage)])
    assert hidden_statements(unasked) == [answer]
