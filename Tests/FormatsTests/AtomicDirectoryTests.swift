import Formats
import Foundation
import TestSupport
import XCTest

final class AtomicDirectoryTests: XCTestCase {
    /// RENAME_EXCHANGE swaps two directories' names in one step (what `prepare` replaces its
    /// output with: there is no moment without a complete dataset at the name).
    func testExchangeSwapsTwoDirectories() throws {
        let directory = try TemporaryDirectory("exchange")
        defer { directory.remove() }
        try directory.write("old/marker", Array("old".utf8))
        try directory.write("new/marker", Array("new".utf8))
        // Linux 3.15+ on ext4, tmpfs, btrfs, xfs; elsewhere `prepare` falls back to two renames.
        try XCTSkipUnless(AtomicDirectory.exchange(directory.file("new").path, directory.file("old").path),
                          "this filesystem cannot exchange names (errno \(errno))")
        XCTAssertEqual(try String(contentsOfFile: directory.file("old/marker").path, encoding: .utf8), "new")
        XCTAssertEqual(try String(contentsOfFile: directory.file("new/marker").path, encoding: .utf8), "old")
        XCTAssertFalse(AtomicDirectory.exchange(directory.file("new").path, directory.file("absent").path), "both names must exist")
    }
}
