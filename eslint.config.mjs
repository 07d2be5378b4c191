import js from "@eslint/js";
import tseslint from "typescript-eslint";

/** One no-restricted-imports block per layer: relative imports of the folders above it are errors. */
function layers(rules) {
    return rules.map(([files, above]) => ({
        files: [files],
        rules: {
            "no-restricted-imports": [
                "error",
                {
                    patterns: [
                        {
                            regex: `^(\\./|(\\.\\./)+)(${above.join("|")})(/|$)`,
                            message: `${files} sits below ${above.join(", ")}: imports run one way (README, "Layout").`,
                        },
                    ],
                },
            ],
        },
    }));
}

export default tseslint.config(
    { ignores: ["node_modules/**", ".cache/**", "engine/**"] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        languageOptions: { ecmaVersion: 2022, sourceType: "module" },
        rules: {
            "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
            "@typescript-eslint/no-explicit-any": "error",
            "no-console": "off",
        },
    },
    // Imports run one way (README, "Layout"): clients ← config ← components ←
    // rotations ← program ← operations ← sandbox ← tools; the product code never
    // reaches the sandbox or the tools. Each layer lists what it may not import.
    ...layers([
        ["clients/**", ["config", "components", "rotations", "program", "operations", "sandbox", "tools"]],
        ["config/**", ["components", "rotations", "program", "operations", "sandbox", "tools"]],
        ["components/**", ["rotations", "program", "operations", "sandbox", "tools"]],
        ["rotations/**", ["program", "operations", "sandbox", "tools"]],
        ["{index,program}.ts", ["operations", "sandbox", "tools"]],
        ["operations/**", ["sandbox", "tools"]],
        ["sandbox/**", ["tools"]],
    ]),
    {
        files: ["**/*.js", "**/*.cjs"],
        languageOptions: {
            sourceType: "commonjs",
            globals: { require: "readonly", module: "writable", process: "readonly", __dirname: "readonly", console: "readonly" },
        },
        rules: { "@typescript-eslint/no-require-imports": "off" },
    },
);
