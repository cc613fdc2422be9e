import Catalog
import Foundation
import Imaging

/// An input the report cannot read, with the file and the reason.
public enum ReportError: Error, CustomStringConvertible {
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// `darkroom report`: one self-contained HTML file (inline SVG charts, thumbnails as data URLs) of
/// a catalogue and, optionally, a training run. Opens offline; nothing is fetched.
public struct HTMLReport {
    public var database: CatalogDatabase
    public var databasePath: String
    public var run: String?
    public var generated: String?
    public var probe: String?
    /// A `utility --out` report: does the synthetic set help a classifier?
    public var utility: String?
    /// Largest number of rows or clusters shown per table.
    public var limit = 24

    public init(database: CatalogDatabase, databasePath: String, run: String? = nil, generated: String? = nil, probe: String? = nil,
                utility: String? = nil) {
        self.database = database
        self.databasePath = databasePath
        self.run = run
        self.generated = generated
        self.probe = probe
        self.utility = utility
    }

    public func render() throws -> String {
        let summary = try database.summary()
        var body = "<h1>Darkroom report</h1>\n<p class=muted>Catalogue \(escape(databasePath))" + (run.map { ", run \(escape($0))" } ?? "") + "</p>\n"
        body += section("Catalogue", """
            <div class=cards>\(card("files", summary.files))\(card("usable", summary.usable))\(card("exact duplicates", summary.exactDuplicateFiles))\
            \(card("near-duplicate groups", summary.nearDuplicateGroups))\(card("low information", summary.lowInformation))\
            \(card("small (< \(ImageShape.smallSide) px)", summary.small))\(card("odd aspect (> \(ImageShape.extremeAspect):1)", summary.oddAspect))</div>
            <div class=row><div>\(barChart(title: "by status", summary.byStatus))</div><div>\(barChart(title: "by format", summary.byFormat))</div></div>
            """)
        body += section("Files that could not be used", try badFiles())
        body += section("Exact duplicates", try clusters(.exactDuplicates))
        body += section("Near duplicates", try clusters(.nearDuplicates))
        if let run {
            body += try trainingSection(run)
            body += evaluationSection(run + "/evaluation")
        }
        if let generated { body += try generationSection(generated) }
        if let probe, let data = FileManager.default.contents(atPath: probe),
           let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            body += section("Linear probe on discriminator features", """
                <div class=cards>\(card("train accuracy", percent(json["train_accuracy"])))\(card("test accuracy", percent(json["test_accuracy"])))\
                \(card("test rows", json["test_count"] as? Int ?? 0))\(card("features", json["features"] as? Int ?? 0))</div>
                """)
        }
        if let utility { body += try utilitySection(utility) }
        return "<!doctype html>\n<html lang=en><head><meta charset=utf-8><title>Darkroom report</title><style>\(HTMLReport.style)</style></head>\n<body>\n\(body)</body></html>\n"
    }

    // MARK: sections

    private func badFiles() throws -> String {
        var rows = ""
        var count = 0
        for status in ImageStatus.allCases where status != .ok {
            for row in try database.listing(.status(status)).dropFirst() {
                count += 1
                guard count <= limit * 2 else { continue }
                rows += "<tr><td><span class=tag>\(status.rawValue)</span></td><td>\(escape(row[0]))</td><td>\(escape(row[1]))</td><td>\(escape(row[3]))</td></tr>\n"
            }
        }
        guard count > 0 else { return "<p>None: every file decoded.</p>" }
        let more = count > limit * 2 ? "<p class=muted>\(count - limit * 2) more: <code>darkroom inspect --list STATUS</code></p>" : ""
        return "<table><tr><th>status</th><th>path</th><th>format</th><th>reason</th></tr>\n\(rows)</table>\(more)"
    }

    private func clusters(_ listing: CatalogListing) throws -> String {
        let rows = try database.listing(listing).dropFirst()
        guard !rows.isEmpty else { return "<p>None found.</p>" }
        let roots = try database.rootPaths()
        var groups: [(String, [String])] = []
        for row in rows {
            if groups.last?.0 == row[0] { groups[groups.count - 1].1.append(row[1]) } else { groups.append((row[0], [row[1]])) }
        }
        var html = "<p class=muted>\(groups.count) groups; the first \(min(groups.count, limit)) shown.</p>\n<div class=clusters>"
        for (_, members) in groups.prefix(limit) {
            html += "<div class=cluster>"
            for member in members.prefix(8) {
                let image = roots.lazy.map { $0 + "/" + member }.first { FileManager.default.fileExists(atPath: $0) }
                html += "<figure>\(image.flatMap(thumbnail) ?? "<div class=missing>?</div>")<figcaption>\(escape(member))</figcaption></figure>"
            }
            html += "</div>\n"
        }
        return html + "</div>"
    }

    private func trainingSection(_ run: String) throws -> String {
        let lines = ((try? String(contentsOfFile: run + "/metrics.jsonl", encoding: .utf8)) ?? "").split(separator: "\n")
        let metrics = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        func series(_ key: String) -> [(Double, Double)] {
            metrics.compactMap { m in (m["iteration"] as? Double).flatMap { x in (m[key] as? Double).map { (x, $0) } } }
        }
        var html = "<div class=row><div>\(lineChart(title: "losses", [("loss_d", series("loss_d")), ("loss_g", series("loss_g"))]))</div>"
        html += "<div>\(lineChart(title: "mean D outputs", [("D(x)", series("d_real")), ("D(G(z))", series("d_fake"))]))</div>"
        html += "<div>\(lineChart(title: "images per second", [("img/s", series("img_per_s"))]))</div>"
        if !series("augment_p").isEmpty {
            html += "<div>\(lineChart(title: "augmentation probability p (ADA r_t)", [("p", series("augment_p")), ("r_t", series("ada_r_t"))]))</div>"
        }
        if !series("fd").isEmpty {
            html += "<div>\(lineChart(title: "fd by iteration (lower is better; checkpoints/best at the lowest)", [("fd", series("fd"))]))</div>"
            html += "<div>\(lineChart(title: "precision and recall by iteration", [("precision", series("precision")), ("recall", series("recall"))]))</div>"
        }
        html += "</div>\n"
        if let data = FileManager.default.contents(atPath: run + "/summary.json"),
           let summary = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let memo = summary["memorisation"] as? [String: Any] {
            html += "<div class=cards>\(card("epochs", summary["epochs"] as? Int ?? 0))\(card("iterations", summary["iterations"] as? Int ?? 0))"
            html += card("sample NN distance (median)", String(format: "%.3f", memo["sample_nn_distance_median"] as? Double ?? 0))
            html += card("real NN distance (median)", String(format: "%.3f", memo["real_nn_distance_median"] as? Double ?? 0))
            html += card("ratio (≥ 1: no copying)", String(format: "%.2f", memo["median_ratio"] as? Double ?? 0))
            if let diversity = summary["diversity"] as? [String: Any] {
                html += card("diversity (samples vs real NN; ~1 as varied as the data)", String(format: "%.2f", diversity["ratio"] as? Double ?? 0))
            }
            html += "</div>\n"
            if let diversity = summary["diversity"] as? [String: Any], let verdict = diversity["verdict"] as? String {
                let message = escape(diversity["message"] as? String ?? "")
                html += verdict == "ok" ? "<p class=muted>\(message)</p>\n" : "<p class=alarm>\(message)</p>\n"
            }
        }
        let samples = ((try? FileManager.default.contentsOfDirectory(atPath: run + "/samples")) ?? []).filter { $0.hasSuffix(".png") }.sorted()
        html += "<div class=grids>"
        for name in samples {
            guard let data = FileManager.default.contents(atPath: run + "/samples/" + name) else { continue }
            html += "<figure><img src=\"data:image/png;base64,\(data.base64EncodedString())\" alt=\"\(escape(name))\"><figcaption>\(escape(name))</figcaption></figure>"
        }
        html += "</div>\n"
        return section("Training", html)
    }

    /// `darkroom evaluate`'s figures for the run, if it was evaluated: the cards, each mode-coverage
    /// bin (its real centre, real and synthetic shares, significant differences marked), and the
    /// two-sample classifier's most and least convincing fakes.
    private func evaluationSection(_ directory: String) -> String {
        guard let data = FileManager.default.contents(atPath: directory + "/evaluation.json"),
              let figures = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return "" }
        func number(_ key: String, _ format: String) -> String { (figures[key] as? Double).map { String(format: format, $0) } ?? "–" }
        let bins = figures["ndb_bins"] as? [[String: Any]] ?? []
        var html = "<p class=muted>\(escape(figures["checkpoint"] as? String ?? "")) against \(figures["count"] as? Int ?? 0) images of \(escape(figures["data"] as? String ?? "")); features \(escape(figures["feature_space"] as? String ?? ""))</p>"
        html += "<div class=cards>\(card("two-sample accuracy (0.5: indistinguishable)", number("two_sample_accuracy", "%.3f")))\(card("fd (lower is better)", number("fd", "%.3f")))"
        html += card("precision", number("precision", "%.3f")) + card("recall", number("recall", "%.3f"))
        html += card("mode bins that differ (NDB)", "\(figures["ndb"] as? Int ?? 0) of \(bins.count)") + "</div>\n"
        let centres = FileManager.default.contents(atPath: directory + "/bins.png").flatMap { try? PNG.decode(Array($0)) }
        let side = centres.map { ($0.width - 2) / 10 - 2 } ?? 0
        let top = max(bins.compactMap { max($0["real_share"] as? Double ?? 0, $0["synthetic_share"] as? Double ?? 0) }.max() ?? 0, 1e-9)
        html += "<p class=muted>Mode coverage: each bin's real centre, its share of real images (blue) and of synthetic ones (orange); ◆ marks a significant difference.</p><div class=bins>"
        for (index, bin) in bins.enumerated() {
            let real = bin["real_share"] as? Double ?? 0, synthetic = bin["synthetic_share"] as? Double ?? 0
            var thumb = ""
            if let centres, side > 0 {
                let tile = centres.cropped(x: 2 + (index % 10) * (side + 2), y: 2 + (index / 10) * (side + 2), width: side, height: side)
                if let png = try? PNG.encode(tile) { thumb = "<img class=thumb src=\"data:image/png;base64,\(Data(png).base64EncodedString())\" alt=\"bin \(index)\">" }
            }
            html += "<figure>\(thumb)<div class=shares><span class=good style=\"height:\(Int(48 * real / top))px\"></span><span class=bar style=\"height:\(Int(48 * synthetic / top))px\"></span></div>"
            html += "<figcaption>\(String(format: "%.1f/%.1f%%", 100 * real, 100 * synthetic))\((bin["significant"] as? Bool ?? false) ? " ◆" : "")</figcaption></figure>"
        }
        html += "</div><div class=grids>"
        for (name, caption) in [("most-convincing.png", "most convincing fakes (two-sample classifier)"), ("least-convincing.png", "least convincing fakes")] {
            guard let image = FileManager.default.contents(atPath: directory + "/" + name) else { continue }
            html += "<figure><img src=\"data:image/png;base64,\(image.base64EncodedString())\" alt=\"\(name)\"><figcaption>\(caption)</figcaption></figure>"
        }
        return section("Evaluation", html + "</div>")
    }

    /// `darkroom utility`'s figures side by side: the small CNN on the labelled real images, on
    /// those plus the synthetic set, on the synthetic set alone, and logistic regression on D's
    /// features, each on the same held-out real images; then each class's.
    private func utilitySection(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw ReportError.unreadable(path: path, reason: "no such file") }
        guard let figures = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let realOnly = figures["real_only"] as? Double, let realPlusSynthetic = figures["real_plus_synthetic"] as? Double,
              let syntheticOnly = figures["synthetic_only"] as? Double else {
            throw ReportError.unreadable(path: path, reason: "not a utility report (darkroom utility --out FILE)")
        }
        let real = figures["real_count"] as? Int ?? 0, synthetic = figures["synthetic_count"] as? Int ?? 0
        let runs = figures["runs"] as? [String: [Double]]
        func row(_ name: String, _ images: String, _ accuracy: Double, _ key: String?) -> String {
            let seeds = key.flatMap { runs?[$0] }.map { " <span class=muted>(" + $0.map { String(format: "%.1f", 100 * $0) }.joined(separator: ", ") + ")</span>" } ?? ""
            let change = key == "real_only" ? "" : String(format: "%+.1f", 100 * (accuracy - realOnly))
            return "<tr><td>\(escape(name))</td><td>\(escape(images))</td><td><b>\(String(format: "%.1f%%", 100 * accuracy))</b>\(seeds)</td><td>\(change)</td></tr>\n"
        }
        var html = "<p class=muted>Test accuracy on \(figures["test_count"] as? Int ?? 0) held-out labelled real images of "
            + "\((figures["classes"] as? [String])?.count ?? 0) classes, \(escape(figures["checkpoint"] as? String ?? ""))"
            + ((figures["repeats"] as? Int).map { $0 > 1 ? "; each the mean of \($0) seeds (each seed's in brackets)" : "" } ?? "") + ".</p>\n"
        let lift = 100 * (realPlusSynthetic - realOnly)
        html += String(format: lift > 0 ? "<p>The synthetic set lifts the classifier by <b>%.1f points</b>.</p>\n" : "<p class=alarm>The synthetic set does not help: %.1f points.</p>\n", lift)
        html += "<table><tr><th>classifier</th><th>trained on</th><th>test accuracy</th><th>points against real only</th></tr>\n"
        html += row("small CNN, real only", "\(real) labelled real images", realOnly, "real_only")
        html += row("small CNN, real + synthetic", "\(real) real + \(synthetic) synthetic", realPlusSynthetic, "real_plus_synthetic")
        html += row("small CNN, synthetic only (Classification Accuracy Score)", "\(synthetic) synthetic images", syntheticOnly, "synthetic_only")
        if let features = figures["discriminator_features"] as? Double {
            html += row("logistic regression on D's features", "\(real) labelled real images", features, nil)
        }
        if let labeller = figures["labeller_test_accuracy"] as? Double { html += row("the labeller itself (FixMatch)", "the labelled and the unlabelled images", labeller, nil) }
        html += "</table>\n"
        var settings = ["synthetic share of each mixed batch: \(figures["synthetic_share"] as? Double ?? 0.5)"]
        if let sets = figures["sets"] as? [String] { settings.append("the synthetic set read from \(sets.joined(separator: ", "))") }
        if let filter = figures["filter"] as? Double, filter > 0 {
            settings.append("filter \(filter) by \(figures["filter_by"] as? String ?? "head"), keeping the \(figures["filter_keep"] as? String ?? "surest")"
                            + ((figures["filter_floor"] as? Double).map { " of those scored at least \($0)" } ?? ""))
        }
        if figures["soft_labels"] as? Bool == true { settings.append("soft labels from the labeller") }
        if let mix = figures["class_mix"] as? Double {
            settings.append("\(mix) of each class's candidates drawn between classes (\(figures["class_mixed"] as? Int ?? 0) of the kept images)")
        }
        if let psi = figures["psi"] as? Double { settings.append("latents scaled by ψ \(psi)") }
        if let agreement = figures["labeller_agreement"] as? Double {
            settings.append(String(format: "the labeller calls %.1f%% of the synthetic images their class", 100 * agreement))
        }
        if let schedule = figures["schedule"] as? String { settings.append("learning rate \(schedule)") }
        if let steps = figures["steps"] as? Int { settings.append("\(steps) steps per classifier (not the fixed recipe)") }
        html += "<p class=muted>\(escape(settings.joined(separator: "; ")))</p>\n"
        let perClass = figures["per_class"] as? [[String: Any]] ?? []
        if !perClass.isEmpty {
            func cell(_ value: Any?) -> String { "<td>\((value as? Double).map { String(format: "%.1f%%", 100 * $0) } ?? "–")</td>" }
            // What real + synthetic calls each class most often when it is wrong: where the set teaches a confusion.
            let confusion = (figures["confusion"] as? [String: Any])?["real_plus_synthetic"] as? [[Int]]
            let labels = perClass.map { $0["label"] as? String ?? "" }
            func mistake(_ row: Int) -> String {
                guard let counts = confusion, row < counts.count, counts[row].count == labels.count else { return "" }
                let wrong = counts[row].enumerated().filter { $0.offset != row }.max { $0.element < $1.element }
                guard let wrong, wrong.element > 0 else { return "<td>–</td>" }
                return "<td>\(escape(labels[wrong.offset])) " + String(format: "%.1f%%", 100 * Double(wrong.element) / Double(max(counts[row].reduce(0, +), 1))) + "</td>"
            }
            html += "<table><tr><th>class</th><th>test images</th><th>real only</th><th>real + synthetic</th><th>synthetic only</th>"
                + (confusion == nil ? "" : "<th>real + synthetic's commonest mistake</th>") + "</tr>\n"
            for (row, entry) in perClass.enumerated() {
                html += "<tr><td>\(escape(entry["label"] as? String ?? ""))</td><td>\(entry["test_count"] as? Int ?? 0)</td>"
                    + cell(entry["real_only"]) + cell(entry["real_plus_synthetic"]) + cell(entry["synthetic_only"]) + mistake(row) + "</tr>\n"
            }
            html += "</table>\n"
        }
        return section("Does the synthetic set help? (utility)", html)
    }

    private func generationSection(_ directory: String) throws -> String {
        let lines = ((try? String(contentsOfFile: directory + "/metadata.jsonl", encoding: .utf8)) ?? "").split(separator: "\n")
        let rows = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let synthetic = rows.filter { $0["source"] as? String == "synthetic" }
        var html = "<div class=cards>\(card("synthetic images", synthetic.count))\(card("real images", rows.count - synthetic.count))</div><div class=cluster>"
        for row in synthetic.prefix(32) {
            guard let name = row["file_name"] as? String, let image = thumbnail(directory + "/" + name) else { continue }
            html += "<figure>\(image)</figure>"
        }
        return section("Generated", html + "</div>")
    }

    // MARK: pieces

    private func section(_ title: String, _ content: String) -> String { "<section><h2>\(escape(title))</h2>\n\(content)\n</section>\n" }

    private func card(_ label: String, _ value: Any) -> String {
        "<div class=card><div class=value>\(escape("\(value)"))</div><div class=label>\(escape(label))</div></div>"
    }

    private func percent(_ value: Any?) -> String { String(format: "%.1f%%", 100 * ((value as? Double) ?? 0)) }

    /// A 64-pixel thumbnail as an <img> with a data URL, or nil when the file does not decode.
    private func thumbnail(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
              let image = try? ImageCodec.decode(Array(data), options: DecodeOptions(maxPixels: 50_000_000, jpegMinimumSide: 64)) else { return nil }
        let flat = image.hasAlpha ? image.converted(toChannels: image.channels == 2 ? 1 : 3) : image
        let scale = 64.0 / Double(max(flat.width, flat.height))
        let small = scale < 1 ? flat.resized(width: max(1, Int(Double(flat.width) * scale)), height: max(1, Int(Double(flat.height) * scale))) : flat
        guard let png = try? PNG.encode(small) else { return nil }
        return "<img class=thumb src=\"data:image/png;base64,\(Data(png).base64EncodedString())\" alt=\"\(escape(path))\">"
    }

    private func barChart(title: String, _ counts: [String: Int]) -> String {
        let items = counts.sorted { $0.value > $1.value }
        let top = max(items.first?.value ?? 1, 1), rowHeight = 22, width = 420
        var svg = "<svg viewBox=\"0 0 \(width) \(items.count * rowHeight + 28)\" width=\(width) role=img aria-label=\"\(escape(title))\">"
        svg += "<text x=0 y=16 class=title>\(escape(title))</text>"
        for (index, item) in items.enumerated() {
            let y = 24 + index * rowHeight, length = max(2, 260 * item.value / top)
            svg += "<text x=0 y=\(y + 15) class=axis>\(escape(item.key))</text>"
            svg += "<rect x=100 y=\(y + 3) width=\(length) height=16 class=\(item.key == "ok" || item.key == "png" || item.key == "jpeg" ? "good" : "bar")></rect>"
            svg += "<text x=\(106 + length) y=\(y + 15) class=axis>\(item.value)</text>"
        }
        return svg + "</svg>"
    }

    private func lineChart(title: String, _ series: [(String, [(Double, Double)])]) -> String {
        let width = 420.0, height = 220.0, left = 44.0, bottom = 24.0, top = 24.0
        let points = series.flatMap(\.1)
        guard let minX = points.map(\.0).min(), let maxX = points.map(\.0).max(),
              let minY = points.map(\.1).min(), let maxY = points.map(\.1).max() else {
            return "<p class=muted>\(escape(title)): no data</p>"
        }
        let spanX = max(maxX - minX, 1e-9), spanY = max(maxY - minY, 1e-9)
        func x(_ value: Double) -> Double { left + (value - minX) / spanX * (width - left - 8) }
        func y(_ value: Double) -> Double { height - bottom - (value - minY) / spanY * (height - bottom - top) }
        var svg = "<svg viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\(Int(width)) role=img aria-label=\"\(escape(title))\">"
        svg += "<text x=0 y=16 class=title>\(escape(title))</text>"
        svg += "<line x1=\(left) y1=\(height - bottom) x2=\(width - 8) y2=\(height - bottom) class=frame />"
        svg += "<line x1=\(left) y1=\(top) x2=\(left) y2=\(height - bottom) class=frame />"
        svg += "<text x=0 y=\(top + 8) class=axis>\(format(maxY))</text><text x=0 y=\(height - bottom) class=axis>\(format(minY))</text>"
        svg += "<text x=\(left) y=\(height - 6) class=axis>\(format(minX))</text><text x=\(width - 60) y=\(height - 6) class=axis>\(format(maxX))</text>"
        for (index, (name, data)) in series.enumerated() {
            let path = data.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
            svg += "<polyline points=\"\(path)\" class=\"line s\(index)\" fill=none />"
            svg += "<text x=\(Int(width) - 130 + index * 62) y=16 class=\"legend s\(index)\">\(escape(name))</text>"
        }
        return svg + "</svg>"
    }

    private func format(_ value: Double) -> String { abs(value) >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value) }

    static let style = """
        body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#1d2330;padding:0 16px}
        h1{font-size:26px;margin:0}h2{font-size:19px;border-bottom:1px solid #dde2ea;padding-bottom:4px;margin-top:32px}
        .muted{color:#6b7383}.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
        .card{background:#f4f6fa;border-radius:8px;padding:10px 14px;min-width:120px}.value{font-size:22px;font-weight:600}.label{color:#6b7383;font-size:12px}
        .row{display:flex;flex-wrap:wrap;gap:18px}table{border-collapse:collapse;width:100%;font-size:13px}
        td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #eceff4;vertical-align:top;word-break:break-all}
        .alarm{background:#fde8e8;color:#9b1c1c;font-weight:600;padding:8px 12px;border-radius:6px}
        .tag{background:#fde8e8;color:#9b1c1c;border-radius:4px;padding:1px 6px;font-size:12px;white-space:nowrap}
        .clusters{display:flex;flex-wrap:wrap;gap:10px}.cluster{display:flex;gap:6px;padding:6px;background:#f4f6fa;border-radius:8px}
        .grids{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 14px;padding:8px;background:#f8f9fb;border-radius:8px}
        section>.cluster{flex-wrap:wrap}.bins{display:flex;flex-wrap:wrap;gap:8px}
        .shares{display:flex;align-items:flex-end;justify-content:center;gap:3px;height:50px}.shares span{width:14px;display:block}.shares .good{background:#3d7dca}.shares .bar{background:#e07a5f}
        figure{margin:0;text-align:center;max-width:96px}figcaption{font-size:10px;color:#6b7383;word-break:break-all}
        .grids figure{max-width:300px}.grids img{width:272px;image-rendering:pixelated}
        .thumb{height:64px;image-rendering:pixelated;border:1px solid #dde2ea}.missing{width:64px;height:64px;background:#eee}
        svg text{font-size:12px;fill:#1d2330}svg .title{font-weight:600}svg .axis{fill:#6b7383;font-size:11px}
        .frame{stroke:#c5ccd8}.bar{fill:#e07a5f}.good{fill:#3d7dca}.line{stroke-width:1.6}
        .s0{stroke:#3d7dca;fill:#3d7dca}.s1{stroke:#e07a5f;fill:#e07a5f}.legend{font-size:12px}polyline.s0,polyline.s1{fill:none}
        """
}

func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}
