use super::*;

const P: &str = "<project name='p'><contqueries><contquery name='cq'><windows>\
    <window-source name='trades'><schema-string>id*:int64,sym:string,price:double,at:stamp</schema-string>\
    <connectors><connector class='fs' name='in'><properties><property name='type'>pub</property></properties></connector></connectors></window-source>\
    <window-filter name='big'><expression>price &gt; 10</expression></window-filter>\
    </windows><edges><edge source='trades' target='big'/></edges></contquery></contqueries></project>";
const XML: Option<&[u8]> = Some(b"application/xml");
const V1: &str = "/eventStreamProcessing/v1";

fn loaded() -> StandIn {
    let mut s = StandIn::new(Settings::default());
    let (code, body) = s.handle(
        "PUT",
        &format!("{V1}/projects/p?overwrite=true"),
        XML,
        P.as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    s
}

fn inject(s: &mut StandIn, window: &str, ct: Option<&[u8]>, events: &str) -> Answer {
    s.handle(
        "PUT",
        &format!("{V1}/windows/p/cq/{window}/state?value=injected"),
        ct,
        format!("<events>{events}</events>").as_bytes(),
    )
}

/// An ESP-shaped error: `message` and `details/detail` (esp-protocol.md §2.3).
fn esp_error(a: &Answer, code: u16, words: &str) {
    assert_eq!(a.0, code, "{}", a.1);
    assert!(a.1.contains("<message>"), "{}", a.1);
    assert!(a.1.contains(words), "{words:?} not in {}", a.1);
}

const GOOD: &str = "<event><opcode>i</opcode><id key='true'>1</id><sym>A</sym><price>2.5</price><at>1452933000000468</at></event>";

#[test]
fn injects_are_checked_as_strictly_as_esp() {
    let mut s = loaded();
    assert_eq!(inject(&mut s, "trades", XML, GOOD).0, 200);
    let unknown = GOOD.replace("<sym>A</sym>", "<sym>A</sym><venue>1</venue>");
    esp_error(&inject(&mut s, "trades", XML, &unknown), 400, "venue");
    let no_key = GOOD.replace("<id key='true'>1</id>", "");
    esp_error(&inject(&mut s, "trades", XML, &no_key), 400, "key field");
    let bad = GOOD.replace("2.5", "cheap");
    esp_error(&inject(&mut s, "trades", XML, &bad), 400, "price");
    // A stamp as a source wrote it: ESP cannot know the source's dateformat.
    let text = GOOD.replace("1452933000000468", "2016-01-16 08:30:00.000468");
    esp_error(
        &inject(&mut s, "trades", XML, &text),
        400,
        "microseconds since 1970",
    );
    esp_error(
        &inject(&mut s, "trades", Some(b"application/json"), GOOD),
        415,
        "Content-Type",
    );
    assert_eq!(
        inject(&mut s, "trades", Some(b"text/xml; charset=utf-8"), GOOD).0,
        200
    );
    assert_eq!(
        inject(&mut s, "trades", None, GOOD).0,
        200,
        "no Content-Type is XML"
    );
    esp_error(
        &inject(&mut s, "big", XML, GOOD),
        400,
        "not a source window",
    );
    esp_error(&inject(&mut s, "nope", XML, GOOD), 404, "does not exist");
    let (code, _) = s.handle(
        "PUT",
        &format!("{V1}/projects/p/state?value=stopped"),
        None,
        b"",
    );
    assert_eq!(code, 200);
    esp_error(&inject(&mut s, "trades", XML, GOOD), 400, "not running");
    s.handle(
        "PUT",
        &format!("{V1}/projects/p/state?value=running"),
        None,
        b"",
    );
    assert_eq!(inject(&mut s, "trades", XML, GOOD).0, 200);
}

#[test]
fn loads_honour_overwrite_and_a_reload_empties_the_windows() {
    let mut s = loaded();
    inject(&mut s, "trades", XML, GOOD);
    inject(&mut s, "trades", XML, GOOD);
    let held = |s: &mut StandIn| {
        s.handle("GET", &format!("{V1}/events/p/cq/trades"), None, b"")
            .1
    };
    assert_eq!(held(&mut s), "<events count=\"2\"/>");
    let again = s.handle("PUT", &format!("{V1}/projects/p"), XML, P.as_bytes());
    esp_error(&again, 400, "already exists");
    assert_eq!(
        held(&mut s),
        "<events count=\"2\"/>",
        "a refused load changes nothing"
    );
    let r = s.handle(
        "PUT",
        &format!("{V1}/projects/p?overwrite=true&start=false"),
        XML,
        P.as_bytes(),
    );
    assert_eq!(r.0, 200);
    assert_eq!(
        held(&mut s),
        "<events count=\"0\"/>",
        "a reload empties the windows"
    );
    esp_error(&inject(&mut s, "trades", XML, GOOD), 400, "not running");
    assert_eq!(s.loads, 2);
    let list = s.handle("GET", &format!("{V1}/projects"), None, b"").1;
    assert_eq!(
        list,
        "<projects><project name=\"p\" state=\"stopped\"/></projects>"
    );
}

#[test]
fn the_rest_surface_sas_clients_read() {
    let mut s = loaded();
    let server = s.handle("GET", "/SASESP/server", None, b"").1;
    assert!(server.contains("version=\"6.2\""), "{server}");
    assert_eq!(s.handle("HEAD", V1, None, b"").0, 200);
    let xml = s
        .handle("GET", &format!("{V1}/projectXml?name=p"), None, b"")
        .1;
    assert!(xml.starts_with("<projects><project name='p'"), "{xml}");
    let w = s
        .handle(
            "GET",
            &format!("{V1}/windows/p/cq/trades?schema=true"),
            None,
            b"",
        )
        .1;
    assert_eq!(
        w,
        "<windows><window-source name=\"trades\"><schema><fields><field name=\"id\" type=\"int64\" key=\"true\"/><field name=\"sym\" type=\"string\"/><field name=\"price\" type=\"double\"/><field name=\"at\" type=\"stamp\"/></fields></schema></window-source></windows>"
    );
    assert_eq!(
        s.handle("DELETE", &format!("{V1}/projects/p"), None, b"").0,
        200
    );
    assert_eq!(
        s.handle("DELETE", &format!("{V1}/projects/p"), None, b"").0,
        404
    );
}

#[test]
fn a_base_prefix_and_the_status_for_a_missing_project() {
    let mut s = StandIn::new(Settings {
        prefix: "/SASEventStreamProcessingServer/p1".into(),
        missing_status: 400,
        ..Settings::default()
    });
    let at_root = s.handle("GET", &format!("{V1}/server"), None, b"");
    assert_eq!(at_root.0, 404);
    let base = format!("/SASEventStreamProcessingServer/p1{V1}");
    assert_eq!(s.handle("GET", &format!("{base}/server"), None, b"").0, 200);
    let r = s.handle(
        "PUT",
        &format!("{base}/windows/p/cq/trades/state?value=injected"),
        XML,
        b"<events/>",
    );
    esp_error(&r, 400, "project 'p' does not exist");
}
