"""Audit of omni-sms, omni-facebook and omni-twitter with webhook bodies and API pages the fixtures do not hold
(docs/connectors.md, their sections): each message read back from the router's Redis field by field, or refused
with the documented status, nothing else lost."""
import json
import random
import re
import urllib.parse

from harness import stored_count, wait_for
from test_sms import TOKEN, sms_connector, stored, wait_stored
from test_facebook import SECRET, fb_connector, post, wait_stored as fb_wait, stored_doc as fb_doc
from test_twitter import EMPTY, Twitter, api, stored_doc as tw_doc, wait_stored as tw_wait  # noqa: F401 (fixture)
from fake_x_api import Response, page, recorded_dm_headers
from webhooks import inbound, twilio_signature

PAGE = "682498171943165"


def form(params):
    return urllib.parse.urlencode(params, quote_via=urllib.parse.quote).encode()


def test_sms_mms_shuffled_repeated_port_and_query(router, tmp_path):
    """An MMS of three media, its fields in another order, a repeated field, a public_url with a port, a query
    with + and an empty value, X-Forwarded-* headers (ignored: the URL comes from public_url)."""
    conn = sms_connector(tmp_path, router, public_url="https://hooks.example.com:8443/twilio").start()
    try:
        sid = "MM" + "7e" * 16
        media = [("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM7/Media/ME1", "image/jpeg"),
                 ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM7/Media/ME2", "video/3gpp"),
                 ("https://media.example.net/files/report.pdf#p=2", "application/pdf")]
        text = "GSM ok @£$¥ and emoji 👍🏿‍ and ZWJ 👩‍👩‍👧"
        params = inbound(sid, text, frm="+447911123456", media=media) + [("NumSegments", "3")]
        random.Random(7).shuffle(params)
        query = "a=1+2&b=&c=%7E"
        for signed in ("https://hooks.example.com:8443/twilio/sms?" + query, "https://hooks.example.com/twilio/sms?" + query):
            st, _, ans = conn.request("POST", "/sms?" + query, form(params), {
                "X-Twilio-Signature": twilio_signature(TOKEN, signed, params),
                "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"})
            assert (st, ans) == (200, b"<Response/>"), (signed, st, ans)
        wait_stored(router, ["sms:" + sid])
        doc = json.loads(stored(router, "sms:" + sid)["json"])
        assert doc["text"] == text and doc["from"] == {"id": "+447911123456"} and doc["to"] == "+18005551212"
        assert doc["attachments"] == [
            {"name": "ME1", "type": "image/jpeg", "size": 0, "url": media[0][0]},
            {"name": "ME2", "type": "video/3gpp", "size": 0, "url": media[1][0]},
            {"name": "report.pdf", "type": "application/pdf", "size": 0, "url": media[2][0]}], doc["attachments"]
        assert doc["meta"]["num_media"] == 3 and doc["meta"]["num_segments"] in (1, 3), doc["meta"]
        # Signed over another host (what X-Forwarded-Host says): 403, nothing stored.
        sid2 = "SM" + "8f" * 16
        p2 = inbound(sid2)
        assert conn.request("POST", "/sms", form(p2), {
            "X-Twilio-Signature": twilio_signature(TOKEN, "https://evil.example/twilio/sms", p2),
            "X-Forwarded-Host": "evil.example"})[0] == 403
        # An empty Body, a WhatsApp sender, a status callback on /sms with a MessageSid.
        sid3 = "SM" + "9a" * 16
        p3 = inbound(sid3, "")
        assert conn.request("POST", "/sms", form(p3), {"X-Twilio-Signature": twilio_signature(
            TOKEN, "https://hooks.example.com:8443/twilio/sms", p3)})[0] == 200
        wait_stored(router, ["sms:" + sid3])
        assert json.loads(stored(router, "sms:" + sid3)["json"])["text"] == ""
        pw = inbound("SM" + "ab" * 16, frm="whatsapp:+14155550100")
        assert conn.request("POST", "/sms", form(pw), {"X-Twilio-Signature": twilio_signature(
            TOKEN, "https://hooks.example.com:8443/twilio/sms", pw)})[0] == 400
        ps = inbound("SM" + "bc" * 16) + [("MessageStatus", "delivered")]
        assert conn.request("POST", "/sms", form(ps), {"X-Twilio-Signature": twilio_signature(
            TOKEN, "https://hooks.example.com:8443/twilio/sms", ps)})[0] == 200
        assert not router.redis.exists("omni:msg:sms:SM" + "bc" * 16)
        assert not router.redis.exists("omni:msg:sms:" + sid2)
    finally:
        conn.stop()


def test_facebook_batched_events_field_by_field(router, tmp_path):
    conn = fb_connector(tmp_path, router).start()
    try:
        s1, s2 = "1254459154682919", "2254459154682920"
        ev = lambda sender, **kw: dict({"sender": {"id": sender}, "recipient": {"id": PAGE}, "timestamp": 1700000000123}, **kw)
        entry1 = [
            ev(s1, message={"mid": "m.text", "text": "hi 👋", "quick_reply": {"payload": "YES"}}),
            ev(PAGE, message={"mid": "m.echo", "text": "our answer", "is_echo": True, "app_id": 1}),
            ev(s1, delivery={"mids": ["m.echo"], "watermark": 1700000000000}),
            ev(s1, read={"watermark": 1700000000000}),
            ev(s1, postback={"mid": "m.pb", "title": "Get Started", "payload": "START"}),
            ev(s1, postback={"title": "Menu", "payload": "MENU"}),
            ev(s2, message={"mid": "m.att", "attachments": [
                {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/t1/photo_1.jpg?_nc_cat=1"}},
                {"type": "file", "payload": {"url": "https://cdn.fbsbx.com/v/t59/Invoice%20M%C3%A4rz.pdf?_nc=2"}},
                {"type": "location", "payload": {"coordinates": {"lat": 52.52, "long": 13.405}}},
                {"type": "fallback", "payload": None, "title": "A link", "url": "https://example.com/page"}]}),
            ev(s2, message={"mid": "m.sticker", "sticker_id": 369239263222822, "attachments": [
                {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/t39/851557_369239266556155_759568595_n.png", "sticker_id": 369239263222822}}]}),
            ev(s2, message_edit={"mid": "m.att", "text": "edited", "num_edit": 1}),
            ev(s2, reaction={"mid": "m.att", "action": "react", "reaction": "love"}),
            ev(s1, message={"mid": "m.reply", "text": "this", "reply_to": {"mid": "m.text"}}),
        ]
        body = {"object": "page", "entry": [
            {"id": PAGE, "time": 1700000000000, "messaging": entry1},
            {"id": PAGE, "time": 1700000000001, "standby": [ev(s1, message={"mid": "m.standby", "text": "x"})]},
            {"id": PAGE, "time": 1700000000002, "messaging": [ev(s2, message={"mid": "m.second", "text": "2nd"})]}]}
        st, _, ans = post(conn, body)
        assert (st, ans) == (200, b"EVENT_RECEIVED")
        ids = ["facebook:m.text", "facebook:m.pb", "facebook:postback:%s:1700000000123" % s1, "facebook:m.att",
               "facebook:m.sticker", "facebook:m.reply", "facebook:m.second"]
        fb_wait(router, ids)
        for gone in ("m.echo", "m.standby"):
            assert not router.redis.exists("omni:msg:facebook:" + gone)
        d = fb_doc(router, "facebook:m.text")
        assert d.pop("received_at") == "2023-11-14T22:13:20.123Z"
        assert d == {"id": "facebook:m.text", "channel": "facebook", "from": {"id": s1}, "to": PAGE, "text": "hi 👋",
                     "meta": {"page_id": PAGE, "mid": "m.text", "quick_reply": "YES"}}, d
        d = fb_doc(router, "facebook:m.pb")
        assert d["text"] == "Get Started" and d["meta"]["postback"] == {"title": "Get Started", "payload": "START"}, d
        d = fb_doc(router, "facebook:m.att")
        assert d["text"] == "" and d["attachments"] == [
            {"name": "photo_1.jpg", "type": "image", "size": 0, "url": entry1[6]["message"]["attachments"][0]["payload"]["url"]},
            {"name": "Invoice März.pdf", "type": "file", "size": 0, "url": entry1[6]["message"]["attachments"][1]["payload"]["url"]},
            {"name": "location-3", "type": "location", "size": 0, "url": "geo:52.52,13.405"},
            {"name": "page", "type": "fallback", "size": 0, "url": "https://example.com/page"}], d["attachments"]
        assert fb_doc(router, "facebook:m.sticker")["meta"]["sticker_id"] == 369239263222822
        assert fb_doc(router, "facebook:m.reply")["meta"]["reply_to"] == "m.text"
        # Instagram's object: 200, ignored; signatures: sha1 alone 401, upper-case hex taken, wrong 403.
        ig = {"object": "instagram", "entry": [{"id": "1789", "time": 1, "messaging": [ev(s1, message={"mid": "ig.1", "text": "x"})]}]}
        assert post(conn, ig)[0] == 200
        raw = json.dumps({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [ev(s1, message={"mid": "m.sha1", "text": "x"})]}]}).encode()
        import hashlib, hmac
        sha1 = "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
        assert conn.request("POST", "/facebook", raw, {"X-Hub-Signature": sha1})[0] == 401
        assert post(conn, None, raw=raw, signature="sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest().upper())[0] == 200
        fb_wait(router, ["facebook:m.sha1"])
        assert post(conn, None, raw=raw, signature=sha1)[0] == 403
        assert not router.redis.exists("omni:msg:facebook:ig.1")
    finally:
        conn.stop()


def test_twitter_mentions_with_entities_quotes_and_dm_attachments(router, api, tmp_path):
    mentions = {"data": [
        {"id": "1700000000000000003", "text": "@acme look &amp; see &lt;3 https://t.co/AbC123 café 🇫🇷", "author_id": "11",
         "created_at": "2024-03-01T10:00:00.000Z", "conversation_id": "1700000000000000001", "lang": "fr",
         "in_reply_to_user_id": "783214",
         "entities": {"urls": [{"start": 29, "end": 52, "url": "https://t.co/AbC123", "expanded_url": "https://example.com/x",
                                "display_url": "example.com/x"}],
                      "mentions": [{"start": 0, "end": 5, "username": "acme", "id": "783214"}]},
         "referenced_tweets": [{"type": "quoted", "id": "1600000000000000000"}]},
        {"id": "1700000000000000002", "text": "RT @bob: @acme help", "author_id": "12", "lang": "und",
         "referenced_tweets": [{"type": "retweeted", "id": "1600000000000000001"}]}],
        "includes": {"users": [{"id": "11", "username": "ann", "name": "Ann É"}, {"id": "12", "username": "bob2", "name": "Bob"}]},
        "meta": {"newest_id": "1700000000000000003", "oldest_id": "1700000000000000002", "result_count": 2}}
    dms = {"data": [{"id": "1800000000000000001", "event_type": "MessageCreate", "text": "photo &amp; https://t.co/xyz",
                     "sender_id": "750362064426721281", "dm_conversation_id": "750362064426721281-783214",
                     "created_at": "2024-03-01T11:00:00.000Z", "attachments": {"media_keys": ["3_1800000000000000000"]}},
                    {"id": "1800000000000000000", "event_type": "ParticipantsJoin", "sender_id": "5",
                     "dm_conversation_id": "5-783214", "created_at": "2024-03-01T10:00:00.000Z"}],
           "includes": {"users": [{"id": "750362064426721281", "username": "cust", "name": "Cust"}]},
           "meta": {"result_count": 2}}
    hdr = [("content-type", "application/json; charset=utf-8")]
    api.routes["mentions"] = lambda q: page(EMPTY) if q.get("since_id") else Response(200, json.dumps(mentions).encode(), hdr)
    api.routes["dms"] = lambda q: Response(200, json.dumps(dms).encode(), recorded_dm_headers())
    conn = Twitter(tmp_path, router.endpoint, api).start()
    try:
        tw_wait(router, ["twitter:1700000000000000003", "twitter:1700000000000000002", "twitter:dm:1800000000000000001"], conn)
        d = tw_doc(router, "twitter:1700000000000000003")
        assert d == {"id": "twitter:1700000000000000003", "channel": "twitter", "from": {"id": "11", "name": "Ann É"},
                     "received_at": "2024-03-01T10:00:00.000Z",
                     "text": "@acme look & see <3 https://t.co/AbC123 café 🇫🇷", "thread": "1700000000000000001",
                     "lang": "fr", "meta": {"kind": "mention", "tweet_id": "1700000000000000003", "username": "ann",
                                            "conversation_id": "1700000000000000001", "in_reply_to_user_id": "783214",
                                            "lang": "fr", "url": "https://x.com/ann/status/1700000000000000003"}}, d
        d = tw_doc(router, "twitter:1700000000000000002")
        assert "lang" not in d and d["thread"] == "1700000000000000002" and d["meta"]["lang"] == "und", d
        d = tw_doc(router, "twitter:dm:1800000000000000001")
        assert d["text"] == "photo &amp; https://t.co/xyz" and d["thread"] == "dm:750362064426721281-783214", d
        assert d["meta"] == {"kind": "dm", "dm_event_id": "1800000000000000001", "username": "cust",
                             "dm_conversation_id": "750362064426721281-783214"}, d
        assert not router.redis.exists("omni:msg:twitter:dm:1800000000000000000")
    finally:
        conn.stop()


def test_facebook_locations_keep_every_digit_and_names_come_from_the_path(router, tmp_path):
    """docs/connectors.md, omni-facebook: a location's coordinates as a geo URI (RFC 5870), geo:LAT,LONG: the
    coordinates Meta sent, every digit of them (a geo URI rounded to 10 digits moves the customer by metres) and in
    decimal (RFC 5870 has no exponent); an attachment's name is the last segment of the URL's path, not of its
    query (a query may hold a '/')."""
    conn = fb_connector(tmp_path, router).start()
    try:
        atts = [{"type": "location", "payload": {"coordinates": {"lat": 37.483872693672, "long": -122.14900441942}}},
                {"type": "location", "payload": {"coordinates": {"lat": 0.00001, "long": -0.000002}}},
                {"type": "location", "payload": {"coordinates": {"lat": 52, "long": 100}}},
                {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/t1/pic_n.jpg?oh=ab/cd&u=https://x.example/y"}},
                {"type": "fallback", "payload": None, "title": "Shop", "url": "https://l.facebook.com/l.php?u=https://shop.example/item"}]
        body = {"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": "1254459154682919"}, "recipient": {"id": PAGE}, "timestamp": 1700000000000,
             "message": {"mid": "m.geo", "attachments": atts}}]}]}
        assert post(conn, body)[0] == 200
        fb_wait(router, ["facebook:m.geo"])
        got = fb_doc(router, "facebook:m.geo")["attachments"]
        assert [a["url"] for a in got[:3]] == ["geo:37.483872693672,-122.14900441942", "geo:0.00001,-0.000002",
                                               "geo:52,100"], got
        assert [a["name"] for a in got[3:]] == ["pic_n.jpg", "l.php"], got
    finally:
        conn.stop()


def test_sms_num_media_is_digits(router, tmp_path):
    """docs/connectors.md, omni-sms: NumMedia not 0..32 is refused (400). "+1" or " 1" is no count Twilio writes."""
    conn = sms_connector(tmp_path, router).start()
    try:
        for i, nm in enumerate(("+1", " 1", "1 ")):
            p = [(k, nm if k == "NumMedia" else v) for k, v in
                 inbound("MM" + "%02d" % i * 16, "", media=[("https://x.example/m/ME1", "image/png")])]
            st = conn.request("POST", "/sms", form(p), {"X-Twilio-Signature": twilio_signature(
                TOKEN, "https://hooks.example.com/twilio/sms", p)})[0]
            assert st == 400, (nm, st)
    finally:
        conn.stop()


def test_facebook_a_link_to_a_site_root_has_no_path_to_name_it(router, tmp_path):
    """docs/connectors.md, omni-facebook: name "the last segment of the URL's path ... else <type>-<n>". A
    shared link to a site's home page (https://www.example.com) has an empty path: its name is fallback-1, as
    https://www.example.com/ already was, not the host."""
    conn = fb_connector(tmp_path, router).start()
    try:
        atts = [{"type": "fallback", "payload": {"url": "https://www.example.com", "title": "Example"}},
                {"type": "fallback", "payload": {"url": "https://www.example.com?ref=m", "title": "Example"}},
                {"type": "fallback", "payload": {"url": "https://www.example.com/", "title": "Example"}},
                {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/v/pic.png"}}]
        body = {"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": "1254459154682919"}, "recipient": {"id": PAGE}, "timestamp": 1700000000000,
             "message": {"mid": "m.root", "text": "see", "attachments": atts}}]}]}
        assert post(conn, body)[0] == 200
        fb_wait(router, ["facebook:m.root"])
        got = fb_doc(router, "facebook:m.root")["attachments"]
        assert [a["name"] for a in got] == ["fallback-1", "fallback-2", "fallback-3", "pic.png"], got
    finally:
        conn.stop()
