using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>
/// The shape of the code under src/, next to the layering rules: no method longer than <see cref="MethodLinesMax"/> lines,
/// no line wider than <see cref="LineColumnsMax"/> columns, no file longer than <see cref="FileLinesMax"/> lines. A long
/// method hides its steps and a long file its concerns; split them (partial files per concern, as DotNext does).
/// </summary>
public class CodeShapeTests(ITestOutputHelper output)
{
    private const int MethodLinesMax = 70;
    private const int LineColumnsMax = 140;
    private const int FileLinesMax = 500;

    [Fact]
    public void NoMethodInSrc_IsLongerThan70Lines()
    {
        var offenders = new List<string>();
        foreach (var file in SourceFiles())
        {
            var root = CSharpSyntaxTree.ParseText(File.ReadAllText(file), path: file).GetRoot();
            foreach (var node in root.DescendantNodes().Where(IsMethodLike))
            {
                var span = node.GetLocation().GetLineSpan();
                var lines = span.EndLinePosition.Line - span.StartLinePosition.Line + 1;
                if (lines > MethodLinesMax)
                {
                    offenders.Add($"{Relative(file)}:{span.StartLinePosition.Line + 1} {Name(node)}: {lines} lines");
                }
            }
        }

        Report(offenders);
        Assert.True(offenders.Count == 0, $"{offenders.Count} methods over {MethodLinesMax} lines:\n" + string.Join('\n', offenders));
    }

    [Fact]
    public void NoLineInSrc_IsWiderThan140Columns()
    {
        var offenders = new List<string>();
        foreach (var file in SourceFiles())
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                if (lines[i].Length > LineColumnsMax)
                {
                    offenders.Add($"{Relative(file)}:{i + 1}: {lines[i].Length} columns");
                }
            }
        }

        Report(offenders);
        Assert.True(offenders.Count == 0, $"{offenders.Count} lines over {LineColumnsMax} columns:\n" + string.Join('\n', offenders.Take(50)));
    }

    [Fact]
    public void NoFileInSrc_IsLongerThan500Lines()
    {
        var offenders = SourceFiles()
            .Select(f => (File: f, Lines: File.ReadAllLines(f).Length))
            .Where(f => f.Lines > FileLinesMax)
            .Select(f => $"{Relative(f.File)}: {f.Lines} lines")
            .ToList();
        Report(offenders);
        Assert.True(offenders.Count == 0, $"{offenders.Count} files over {FileLinesMax} lines:\n" + string.Join('\n', offenders));
    }

    [Fact]
    public void TheRulesSeeTheWholeOfSrc_AndCatchALongMethod()
    {
        // The checks must be able to fail: they see every project under src/, and a 71-line method is caught.
        Assert.True(SourceFiles().Count() > 100);
        Assert.Contains(SourceFiles(), f => f.EndsWith("RaftNode.cs", StringComparison.Ordinal));
        var body = string.Join('\n', Enumerable.Range(0, MethodLinesMax - 2).Select(i => "        var x" + i + " = " + i + ";"));
        var tree = CSharpSyntaxTree.ParseText("class C\n{\n    void M()\n    {\n" + body + "\n    }\n}\n");
        var method = tree.GetRoot().DescendantNodes().Single(IsMethodLike);
        var span = method.GetLocation().GetLineSpan();
        Assert.Equal(MethodLinesMax + 1, span.EndLinePosition.Line - span.StartLinePosition.Line + 1);
    }

    private static bool IsMethodLike(SyntaxNode node) =>
        node is BaseMethodDeclarationSyntax or AccessorDeclarationSyntax or LocalFunctionStatementSyntax;

    private static string Name(SyntaxNode node) => node switch
    {
        MethodDeclarationSyntax m => m.Identifier.Text,
        ConstructorDeclarationSyntax c => c.Identifier.Text + " (constructor)",
        LocalFunctionStatementSyntax l => l.Identifier.Text + " (local function)",
        AccessorDeclarationSyntax a => a.Keyword.Text + " accessor",
        _ => node.Kind().ToString(),
    };

    private static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(Path.Combine(Repository.Root, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal));

    private static string Relative(string file) => Path.GetRelativePath(Repository.Root, file);

    private void Report(List<string> offenders)
    {
        foreach (var offender in offenders)
        {
            output.WriteLine(offender);
        }
    }
}
