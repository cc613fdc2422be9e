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
}
