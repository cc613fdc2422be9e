import Catalog
import Foundation
import Imaging
import Report
import TestSupport
import XCTest

final class ReportTests: XCTestCase {
    func testReportIsSelfContainedAndCoversTheCatalogueRunAndGeneration() throws {
        let directory = try TemporaryDirectory("report")
        defer { directory.remove() }
        let picture = Pictures.pattern(width: 40, height: 30, channels: 3, seed: 1)
        try directory.write("images/a.png", try PNG.encode(picture))
        try directory.write("images/copy <of> a.png", try PNG.encode(picture))
        try directory.write("images/broken.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 0, 2])
        let database = try CatalogDatabase(path: directory.file("c.sqlite").path)
        try CatalogScanner(database: database).scan(root: directory.file("images").path)
        let metrics = (1...5).map { #"{"epoch":1,"iteration":\#($0),"loss_d":\#(1.0 / Double($0)),"loss_g":\#($0),"d_real":0.6,"d_fake":0.3,"img_per_s":500,"elapsed_s":\#($0)}"# }
        try directory.write("run/metrics.jsonl", Array(metrics.joined(separator: "\n").utf8))
        try directory.write("run/samples/epoch-001.png", try PNG.encode(picture))
        try directory.write("gen/images/000000.png", try PNG.encode(picture))
        try directory.write("gen/metadata.jsonl", Array(#"{"file_name":"images/000000.png","source":"synthetic","index":0}"#.utf8))

        let html = try HTMLReport(database: database, databasePath: "c.sqlite", run: directory.file("run").path, generated: directory.file("gen").path).render()
        for heading in ["Catalogue", "Files that could not be used", "Exact duplicates", "Near duplicates", "Training", "Generated"] {
            XCTAssertTrue(html.contains("<h2>\(heading)</h2>"), heading)
        }
        XCTAssertTrue(html.contains("broken.jpg") && html.contains("truncated"))
        XCTAssertTrue(html.contains("copy &lt;of&gt; a.png"), "file names are escaped")
        XCTAssertFalse(html.contains("copy <of>"))
        XCTAssertTrue(html.contains("<polyline"), "training curves are drawn")
        XCTAssertGreaterThanOrEqual(html.components(separatedBy: "data:image/png;base64,").count - 1, 4, "thumbnails and grids are embedded")
        XCTAssertFalse(html.contains("http://") || html.contains("https://") || html.contains("src=\"/"), "nothing is fetched")
        XCTAssertEqual(html.components(separatedBy: "<svg").count, html.components(separatedBy: "</svg>").count)
    }

    func testUtilitySectionShowsTheClassifiersSideBySideAndRejectsAnotherFile() throws {
        let directory = try TemporaryDirectory("report-utility")
        defer { directory.remove() }
        let database = try CatalogDatabase(path: directory.file("c.sqlite").path)
        let utility = #"""
            {"classes": ["bag", "shirt"], "real_count": 1000, "synthetic_count": 2000, "test_count": 500, "real_only": 0.828,
             "real_plus_synthetic": 0.854, "synthetic_only": 0.842, "discriminator_features": 0.815, "checkpoint": "run/checkpoints/latest.safetensors",
             "filter": 0.75, "filter_by": "labeller", "filter_keep": "hardest", "filter_floor": 0.5, "soft_labels": true, "class_mix": 0.5, "class_mixed": 1300, "psi": 1.25, "synthetic_share": 0.75,
             "labeller_agreement": 0.977, "labeller_test_accuracy": 0.866, "schedule": "constant", "repeats": 3,
             "runs": {"real_only": [0.828, 0.806, 0.827], "real_plus_synthetic": [0.856, 0.853, 0.853], "synthetic_only": [0.837, 0.846, 0.844]},
             "per_class": [{"label": "bag", "test_count": 250, "real_only": 0.9, "real_plus_synthetic": 0.94, "synthetic_only": 0.93},
                           {"label": "shirt <s>", "test_count": 250, "real_only": 0.41, "real_plus_synthetic": 0.45, "synthetic_only": 0.44}],
             "confusion": {"real_only": [[675, 75], [443, 307]], "real_plus_synthetic": [[750, 0], [412, 338]],
                           "synthetic_only": [[698, 52], [420, 330]]}}
            """#
        let path = try directory.write("utility.json", Array(utility.utf8)).path
        let html = try HTMLReport(database: database, databasePath: "c.sqlite", utility: path).render()
        XCTAssertTrue(html.contains("<h2>Does the synthetic set help? (utility)</h2>"))
        for figure in ["82.8%", "85.4%", "84.2%", "81.5%", "86.6%"] { XCTAssertTrue(html.contains("<b>\(figure)</b>"), figure) }
        XCTAssertTrue(html.contains("lifts the classifier by <b>2.6 points</b>"), "the lift is real + synthetic less real only")
        XCTAssertTrue(html.contains("(82.8, 80.6, 82.7)"), "each seed's figure beside the mean")
        XCTAssertTrue(html.contains("<b>84.2%</b> <span class=muted>(83.7, 84.6, 84.4)</span></td><td>+1.4</td>"), "each against real only")
        XCTAssertTrue(html.contains("500 held-out labelled real images of 2 classes"))
        XCTAssertTrue(html.contains("<td>shirt &lt;s&gt;</td><td>250</td><td>41.0%</td><td>45.0%</td><td>44.0%</td><td>bag 54.9%</td>"),
                      "per class, escaped, with real + synthetic's commonest mistake (412 of 750 calls over three seeds)")
        XCTAssertTrue(html.contains("<td>94.0%</td><td>93.0%</td><td>–</td>"), "no mistake on bags")
        XCTAssertTrue(html.contains("filter 0.75 by labeller, keeping the hardest of those scored at least 0.5"))
        XCTAssertTrue(html.contains("0.5 of each class's candidates drawn between classes (1300 of the kept images)"))
        XCTAssertTrue(html.contains("latents scaled by ψ 1.25"))

        let worse = utility.replacingOccurrences(of: "\"real_plus_synthetic\": 0.854", with: "\"real_plus_synthetic\": 0.81")
        let worsePath = try directory.write("worse.json", Array(worse.utf8)).path
        XCTAssertTrue(try HTMLReport(database: database, databasePath: "c.sqlite", utility: worsePath).render().contains("does not help: -1.8 points"))
        XCTAssertFalse(html.contains("read from"))
        let read = utility.replacingOccurrences(of: "\"filter\": 0.75,", with: "\"sets\": [\"a/set\", \"b/set\"], \"filter\": 0,")
        let readPath = try directory.write("read.json", Array(read.utf8)).path
        let readHTML = try HTMLReport(database: database, databasePath: "c.sqlite", utility: readPath).render()
        XCTAssertTrue(readHTML.contains("the synthetic set read from a/set, b/set"), "utility --set names its folders")
        XCTAssertFalse(readHTML.contains("filter 0"))

        let probe = try directory.write("probe.json", Array(#"{"train_accuracy": 0.9, "test_accuracy": 0.89}"#.utf8)).path
        XCTAssertThrowsError(try HTMLReport(database: database, databasePath: "c.sqlite", utility: probe).render()) {
            XCTAssertEqual("\($0)", "\(probe): not a utility report (darkroom utility --out FILE)")
        }
        XCTAssertThrowsError(try HTMLReport(database: database, databasePath: "c.sqlite", utility: directory.file("missing.json").path).render()) {
            XCTAssertTrue("\($0)".hasSuffix("missing.json: no such file"))
        }
    }
}
