"""Question understanding rules of the offline engine that are pure functions: parts of a question, the
common-noun actor, and amount-or-purpose readings of "pay"."""

from rag.backends.offline import split_question
from rag.backends.offline_question import _doer, intent_of



def _one_chunk(text: str):
    """The context of a one-chunk document, as the summary engine gets it."""
    from rag.context import ContextChunk
    from rag.types import Chunk

    chunk = Chunk(id="d1#0", doc_id="d1", ordinal=0, start=0, end=len(text), n_tokens=len(text.split()), text=text)
    return [ContextChunk(id="S1", chunk=chunk, source="d.txt")]


def _readings(text: str):
    from rag.backends.offline_reading import read_document
    from rag.extract import entities_of, split_sentences

    ctx = _one_chunk(text)
    return read_document(split_sentences(ctx, vectors=False), entities_of(ctx))[0]

def _theses(text: str) -> list[str | None]:
    """Per body sentence, the organisation whose strategy it states (None: it states none)."""
    return [r.thesis.name if r.thesis else None for r in _readings(text)]


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


def test_number_words_and_prepositions_opening_a_sentence_are_not_part_of_a_name():
    from rag.language import mentions

    assert [m.text for m in mentions("Six months ago Pettigrew said the plan had changed.")] == ["Pettigrew"]
    assert [m.text for m in mentions("Unlike ACG, Lantern is shrinking its rooms.")] == ["ACG", "Lantern"]
    assert [m.text for m in mentions("Allied Cinema Group said on Monday it would close 31 sites.")][0] == "Allied Cinema Group"


def test_a_product_set_beside_its_owner_is_not_an_organisation():
    from rag.language import EntityIndex

    ix = EntityIndex(["Corvant Group said it would buy electric cars. Corvant ran its own car-sharing service, Corvant Share, "
                      "from 2022. Corvant said the service was closed. Customers book through the Corvant Key app."])
    assert ix.resolve("Corvant Share").kind == "other" and ix.resolve("Corvant Key").kind == "other"
    assert ix.resolve("Corvant").kind == "organisation"
    ix = EntityIndex(["Pemberton Lowe will switch on a new system. The system, called ClearPath and built with Calder "
                      "Analytics, ranks applications. Pemberton Lowe is spending £38m on ClearPath. The National Health "
                      "Service said it would use the National Health Service app."])
    assert ix.resolve("ClearPath").kind == "other"
    assert ix.resolve("National Health Service").kind == "organisation"


def test_the_canonical_name_is_the_full_name_the_story_gives_after_a_headline_short_form():
    from rag.language import EntityIndex

    headline = "Hearthbox to build £70 million kitchen as it chases subscribers\n\n"
    ix = EntityIndex([headline + "Hearthbox Foods, the meal-kit company, said on Tuesday it would build a kitchen. "
                      "Hearthbox said the site would open in 2026. Hearthbox shares rose 6%."])
    assert ix.resolve("Hearthbox").name == "Hearthbox Foods"
    # A longer name that comes only after the short one is used again is its product, not its full name.
    ix = EntityIndex(["Hirebridge charges employers when a candidate starts.\n\nHirebridge began in 2014 as a noticeboard. "
                      "Hirebridge said it had 11 million jobseekers. In October we launch Hirebridge Shifts, which lets "
                      "a care home book a worker."])
    assert ix.resolve("Hirebridge").name == "Hirebridge"


def test_an_organisation_named_inside_a_quotation_is_not_the_speakers_employer():
    from rag.backends.offline_reading import quoted_spans

    text = '"We are not going to become Encore," Chief Executive Fiona Aldous said.'
    assert [text[a:b] for a, b in quoted_spans(text)] == ['"We are not going to become Encore,"']
    text = 'That number no longer means much," Chief Executive Damian Roscoe told analysts.'
    assert [text[a:b] for a, b in quoted_spans(text)] == ['That number no longer means much,"']
    assert quoted_spans("No quotation here, said nobody.") == []


def test_a_headline_states_the_strategy_of_the_organisation_it_opens_with():
    from rag.backends.offline_reading import headline_thesis
    from rag.extract import entities_of, split_sentences

    def read(text: str):
        ctx = _one_chunk(text)
        found = headline_thesis(split_sentences(ctx, vectors=False), entities_of(ctx))
        return (found.thesis.name, found.thesis_strength) if found else None

    body = "\n\n{} said on Monday that it had agreed a plan. {} said more would follow. {} shares rose 2% on Monday."
    assert read("Lantern Cinemas bets on monthly pass and boutique screens" + body.format(*["Lantern Cinemas"] * 3)) == \
        ("Lantern Cinemas", 2)
    assert read("Corvant to go all-electric and scrap rental desks" + body.format("Corvant Group", "Corvant", "Corvant")) == \
        ("Corvant Group", 2)
    assert read("Wyeside Travel buys Castlemoor Holidays for £14.5m in push into coach tours\n\nWyeside Travel's "
                "shareholders said on Monday that it had agreed a deal. Wyeside Travel said it had hired 40 drivers.") == \
        ("Wyeside Travel", 2)
    assert read("Hearthbox issues profit warning and turns to supermarkets with ready meals" +
                body.format("Hearthbox Foods", "Hearthbox", "Hearthbox")) == ("Hearthbox Foods", 2)
    assert read("Hearthbox shares fall after warning" + body.format("Hearthbox Foods", "Hearthbox", "Hearthbox")) is None


def test_a_plan_the_sentence_sets_in_the_past_is_history_and_an_opener_does_not_hide_the_subject():
    from rag.backends.offline_reading import history_first

    assert history_first("As recently as 2023, the company promised to open 25 new multiplexes by 2027.")
    assert not history_first("Donnelly wants a smaller airline built around the network it has flown for decades.")
    text = ("Halvard Volt said on Monday it had bought 52 motorway sites from Wayfare Roadside. Rather than scatter "
            "chargers across car parks, the company is concentrating on a few very busy sites on long-distance routes. "
            "Halvard Volt shares rose 2% on Monday.")
    assert _theses(text)[1] == "Halvard Volt"


def test_a_port_of_name_stays_whole_and_a_dated_said_that_it_would_is_the_organisations_own_commitment():
    from rag.backends.offline_reading import _speaks
    from rag.language import EntityIndex, mentions

    assert [m.text for m in mentions("The Port of Merrow Authority, which owns the harbour, said it would spend more.")] \
        == ["Port of Merrow Authority"]
    ix = EntityIndex(["The Port of Merrow Authority said on the same day that it would spend £52 million on shore power. "
                      "The Franchise Standards Council said in March that it had received complaints."])
    port, council = ix.resolve("Port of Merrow Authority"), ix.resolve("Franchise Standards Council")
    assert not _speaks("The Port of Merrow Authority said on the same day that it would spend £52 million.", port)
    assert _speaks("The Franchise Standards Council said in March that it had received complaints.", council)


def test_a_headline_line_read_as_the_first_sentence_is_still_a_headline():
    from rag.backends.offline_reading import headline_thesis
    from rag.extract import entities_of, split_sentences

    text = ("NCSP to replace fleet with hybrid-electric ships and close Warrenpoint route as Brightwater sells freight arm\n\n"
            "LIVERPOOL, March 3, 2027\n\nThe North Channel Steam Packet Company (NCSP) will replace its fleet. NCSP said "
            "the ships would cut fuel use. NCSP shares rose 2%.")
    ctx = _one_chunk(text)
    found = headline_thesis(split_sentences(ctx, vectors=False), entities_of(ctx))
    assert found is not None and found.thesis.name == "North Channel Steam Packet Company"


def test_open_questions_are_doubts_voiced_and_decisions_still_to_come():
    from rag.backends.offline_reading import _PENDING

    raised = ['"The risk is that a premium screen is only worth the premium for four films a year," she said.',
              "Whether those people then buy anything new is the whole question.",
              "About 60 of the planned drive-throughs still need planning permission.",
              "The application will be decided at a committee meeting on June 18.",
              "The union would seek talks before a consultation ends on July 3.",
              "Corvant has an option to raise its holding to 51% in 2028.",
              "To reach 1,500 kiosks, Ninebar must open about 27 a month for the next two years.",
              "The bigger question is whether it can make premium tyres in volume.",
              "The group works council must approve the transfer.",
              "The purchase is expected to complete on November 2.",
              "Nobody has yet shown that a Cumbrian pale ale sells in Osaka.",
              "If Lanternfly has a flop, Starcross is still paying £21 million a year."]
    settled = ["Corvant reported revenue of £1.38 billion for the year to March.",
               "The council approved the plans for the site in December.",
               "Kerbside lets private owners rent out their cars by the hour.",
               "If needed, the company raised prices."]
    assert all(_PENDING.search(s) for s in raised)
    assert not any(_PENDING.search(s) for s in settled)


def test_a_short_form_the_text_uses_after_the_full_name_joins_it_and_an_acronym_may_leave_out_the_legal_form():
    from rag.language import EntityIndex, acronym_matches

    assert acronym_matches("North Channel Steam Packet Company", "NCSP") and not acronym_matches("Halberd Group", "H")
    ix = EntityIndex(["Harrow Lane Books, the high-street chain with 112 shops, said on Monday it would close 18 of them. "
                      "Harrow Lane's chief executive said it would enlarge 30 branches. Harrow Lane is also going online."])
    assert ix.resolve("Harrow Lane") is ix.resolve("Harrow Lane Books")
    # A shorter name the text introduces first is another organisation ("Calloway Health Partners" is its arm).
    ix = EntityIndex(["Calloway Health, the region's largest hospital group, posted revenue of £1.2 billion. Calloway Health "
                      "said talks had stalled. The group's outpatient arm, Calloway Health Partners, runs 28 clinics. "
                      "Calloway Health Partners wants to double its capacity."])
    assert ix.resolve("Calloway Health") is not ix.resolve("Calloway Health Partners")


def test_the_subject_after_an_opening_clause_with_its_own_relative_clause_states_the_thesis():
    text = ("Goldcrust Bakeries said on Monday it would close 140 shops. Hearthstone Bakehouse said it had opened 12 cafes. "
            "Unlike Goldcrust, which owns and runs all of its shops, Hearthstone is opening cafe-bakeries as fast as it can, "
            "and it is now taking the format abroad. Hearthstone Bakehouse is heading the other way.")
    readings = _readings(text)
    assert readings[2].actor is not None and readings[2].actor.name == "Hearthstone Bakehouse"
    assert readings[3].thesis is not None and readings[3].thesis.name == "Hearthstone Bakehouse"


def test_the_company_points_at_the_organisation_the_text_is_about_not_one_named_in_passing():
    def actors(text: str) -> list[str | None]:
        return [r.actor.name if r.actor else None for r in _readings(text)]

    encore = ("Encore Wardrobe said on Monday it would open three centres. Encore will hire 650 people. Encore's revenue "
              "rose 11%. Encore will pay Parcelway Logistics £34 million a year. Parcelway, which runs returns for "
              "retailers, declined to comment. The company said it would fund the build-out from its cash.")
    assert actors(encore)[-1] == "Encore Wardrobe"
    tessaro = ("Nordmark Turbine Works said on Monday it would close a plant. Nordmark will cut 600 jobs. Nordmark's "
               "shares fell. Nordmark said the plant would shut in May, a week after Tessaro Wind opened one. Rival Tessaro Wind, which competes with Nordmark "
               "in Germany, is heading in the opposite direction. The company said it would hire 200 technicians.")
    assert actors(tessaro)[-1] == "Tessaro Wind"


def test_a_figure_in_a_later_clause_belongs_to_the_organisation_the_sentence_opens_with():
    text = ("Allied Cinema Group said on Monday it would close 31 cinemas. Allied Cinema Group will convert 120 screens. "
            "Allied Cinema Group's 46 premium screens took 19% of its box office, and the average ticket sold for £16.40, "
            "against £9.80 at Lantern Cinemas. Lantern Cinemas said it would open 14 venues.")
    owners = {f.text: (o.name if o else None) for r in _readings(text) for f, o in r.figures}
    assert owners.get("£16.40") == "Allied Cinema Group"


def test_a_place_before_it_is_not_an_organisation_and_the_trader_points_back():
    from rag.language import EntityIndex

    text = ("Pellow & Sons, the family-owned chocolate maker founded in Bristol in 1911, said on Monday that it would raise "
            "prices. Pellow said it would open a line in Bath. Pellow has signed a deal with Varda Cocoa. For Varda, the "
            "deal is the largest it has signed. The trader has spent the past two years moving away from bulk cocoa. "
            "Varda handled 140,000 tonnes last year.")
    bristol = EntityIndex([text]).resolve("Bristol")
    assert bristol is None or bristol.kind != "organisation"
    assert _theses(text)[4] == "Varda Cocoa"


def test_what_a_model_turns_on_states_the_thesis_of_the_organisation_in_focus():
    text = ("Starcross Leisure said on Monday it had signed a ten-year deal for characters. Starcross sold 1.4 million "
            "annual passes last year. Annual passes are the heart of the model. Starcross shares rose 3%.")
    assert _theses(text)[2] == "Starcross Leisure"


def test_an_old_plan_is_not_the_thesis_and_a_hyphenated_descriptor_points_back():
    text = ("Continental River Lines said on Monday it had signed a rail deal. CRL will sell river cruises with train "
            "journeys. The river-cruise operator is aiming for 45,000 rail-and-river passengers a year by 2029. CRL's old "
            "plan, unveiled in 2023, was to build three small coastal ships. CRL shares rose 2%.")
    theses = _theses(text)
    assert theses[2] == "Continental River Lines" and theses[3] is None


def test_name_particles_places_in_lists_and_regions_and_products_named_or_described():
    from rag.language import EntityIndex

    ix = EntityIndex(["The seven-year licence signed with Cooperativa Campos del Duero (CCD) lets the cooperative sell "
                      "seed. CCD said on Monday it would build a mill. The Unión de Agricultores del Duero objected."])
    assert ix.resolve("CCD").name == "Cooperativa Campos del Duero"
    assert ix.resolve("Unión de Agricultores del Duero") is not None
    places = EntityIndex(["Pryce & Daughters, with branches in Sale, Altrincham and Stockport, said it would stay. "
                          "Greyfriars runs 11 sites across southern England and its biggest client is Lanternfield. "
                          "Lanternfield will sell seed across Spain and Portugal rather than produce it itself, and open a "
                          "hub in the north of Wales next year, it said."])
    ix = EntityIndex(["Skandivo Home Stores said it would open showrooms, branded Skandivo Studio, in ten cities. Skandivo "
                      "will close stores. Kestrel opened two showrooms, which the company calls Studios, and Kestrel said "
                      "it would open more. Under its Sofa Pass subscription, Loftwell rents sofas; a group had complaints "
                      "from Sofa Pass customers, and it has asked Loftwell. CCD has licensed Durona, a drought-tolerant "
                      "durum wheat bred by Veldmark Genetics, and it said Durona yielded 14% more. Hallowell Funeral "
                      "Partners began offering Hallowell Simple, an unattended cremation priced at £1,450, and Hallowell "
                      "said it was selling well."])
    for index, names in ((places, ("Altrincham", "Stockport", "England", "Portugal", "Wales")),
                         (ix, ("Skandivo Studio", "Studios", "Sofa Pass", "Durona", "Hallowell Simple"))):
        for name in names:
            e = index.resolve(name)
            assert e is None or e.kind != "organisation", name
    hallowell = ix.resolve("Hallowell")
    assert hallowell.name == "Hallowell Funeral Partners" and hallowell.kind == "organisation"


def test_the_full_name_a_story_opens_with_joins_the_short_name_it_uses_afterwards():
    from rag.language import EntityIndex

    ix = EntityIndex(["Veldmark Genetics, the Dutch plant breeder, said on Wednesday (February 11) that it would license "
                      "its varieties. In 2023 Veldmark said it would build plants. Analysts said Veldmark was right."])
    e = ix.resolve("Veldmark Genetics")
    assert e is not None and e.kind == "organisation" and ix.resolve("Veldmark") is e


def test_a_role_after_a_name_is_an_apposition_not_a_clause_and_keeps_a_number_whole():
    from rag.backends.offline_reading import _ROLE_AFTER

    assert _ROLE_AFTER.match(", and wants members to grow it on at least 40,000 hectares by 2028.") is None
    m = _ROLE_AFTER.match(", who farms 1,200 hectares of rain-fed wheat, said the seed cost more.")
    assert m is not None and m.group(1) == "who farms 1,200 hectares of rain-fed wheat"
