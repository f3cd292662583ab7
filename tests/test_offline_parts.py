"""Question understanding rules of the offline engine that are pure functions: parts of a question, the
common-noun actor, and amount-or-purpose readings of "pay"."""

from rag.backends.offline import split_question
from rag.backends.offline_question import _doer, intent_of


def test_a_question_in_two_parts_is_split_before_the_second_question_word():
    parts = split_question("How many branches are getting shut down, and how does that break down between the two lenders?")
    assert parts == ["How many branches are getting shut down?",
                     "how does that break down between the two lenders? (context: How many branches are getting shut down)"]


def test_one_clause_with_and_stays_whole():
    assert split_question("What are Amazon and Walmart doing in healthcare?") == [
        "What are Amazon and Walmart doing in healthcare?"]
    assert split_question("Since when? (context: Who runs Flow Control?)") == ["Since when? (context: Who runs Flow Control?)"]


def test_the_common_noun_actor_and_its_act():
    assert _doer("How did the full council vote on the FY2026 budget?") == ("council", "vote")
    assert _doer("How many pilots voted in favour?") is None


def test_pay_for_asks_an_amount_unless_it_asks_a_purpose():
    assert intent_of("What did Torvik pay for the sensor maker it bought?") == "figure"
    assert intent_of("What does the state revolving loan pay for?") != "figure"


def test_an_ampersand_acronym_joins_its_long_form_and_a_market_is_not_an_organisation():
    from rag.language import EntityIndex, acronym_matches

    assert acronym_matches("Ashby & Rowe", "A&R") and acronym_matches("Procter and Gamble", "P&G")
    assert not acronym_matches("Ashby Rowe", "A&R")
    ix = EntityIndex(["Tollard & Finch (T&F), Britain's largest seed merchant, said it would open 12 depots. "
                      "T&F said the depots would open in May."])
    assert ix.resolve("T&F") is ix.resolve("Tollard & Finch") and ix.resolve("T&F").kind == "organisation"
    assert ix.resolve("Britain") is None or ix.resolve("Britain").kind != "organisation"
