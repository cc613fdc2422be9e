// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Darkroom",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "darkroom", targets: ["darkroom"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Catalog", targets: ["Catalog"]),
        .library(name: "Dataset", targets: ["Dataset"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "GAN", targets: ["GAN"]),
        .library(name: "Evaluation", targets: ["Evaluation"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // libpng and libjpeg report errors with longjmp, which Swift cannot cross: these
        // small C targets own the setjmp and hand Swift a status code and a message.
        .target(name: "CPNG", linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("z")]),
        .target(name: "CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),

        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),

        .target(name: "Formats"),
        .target(name: "Imaging", dependencies: ["CPNG", "CJPEG"]),
        .target(name: "Catalog", dependencies: [
            "Imaging", "Formats",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "Dataset", dependencies: ["Imaging", "Formats", "Catalog"]),
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .target(name: "NN", dependencies: ["Formats", "CDNNL"]),
        .target(name: "Evaluation", dependencies: ["NN", "Formats", "Dataset"]),
        .target(name: "GAN", dependencies: ["NN", "Formats", "Dataset", "Imaging", "Evaluation", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Pipeline", dependencies: ["Catalog", "Formats", "Recipes", .product(name: "Yams", package: "Yams")]),
        .target(name: "Report", dependencies: ["Catalog", "Imaging"]),
        .target(name: "Recipes", dependencies: ["Imaging", "Formats", "CZlib"]),
        .executableTarget(name: "darkroom", dependencies: [
            "Catalog", "Dataset", "Imaging", "Formats", "Recipes", "GAN", "NN", "Evaluation", "Pipeline", "Report",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .target(name: "TestSupport", dependencies: ["Imaging", "Formats"], path: "Tests/TestSupport",
                exclude: ["pillow_reference.py"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "TestSupport"]),
        .testTarget(name: "CatalogTests", dependencies: [
            "Catalog", "Imaging", "Formats", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
        ]),
        .testTarget(name: "DatasetTests", dependencies: ["Dataset", "Catalog", "Imaging", "Formats", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Formats"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "NN", "Formats", "TestSupport"]),
        .testTarget(name: "GANTests", dependencies: ["GAN", "Evaluation", "NN", "Formats", "Dataset", "Imaging", "TestSupport"]),
        .testTarget(name: "ReportTests", dependencies: ["Report", "Catalog", "Imaging", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Catalog", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: [
            "Imaging", "Catalog", "Formats", "NN", "Recipes", "Evaluation", "GAN", "TestSupport", .product(name: "GRDB", package: "GRDB.swift"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
