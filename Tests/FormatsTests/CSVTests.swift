import Formats
import XCTest

final class CSVTests: XCTestCase {
    func testQuotesOnlyWhatNeedsQuoting() {
        XCTAssertEqual(CSV.row(["a", "b c", "d,e", "say \"hi\"", "two\nlines"]),
                       "a,b c,\"d,e\",\"say \"\"hi\"\"\",\"two\nlines\"\n")
    }

    func testParseInvertsRowForAwkwardFields() {
        let rows = [["path", "label"], ["with, comma.png", "3"], ["line\nbreak.png", ""], ["\"quoted\".png", "x"]]
        XCTAssertEqual(CSV.parse(rows.map(CSV.row).joined()), rows)
    }
}
